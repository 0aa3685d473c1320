import FleetPostgres
import Foundation
import Synchronization

/// The transaction of one batch of one run: skip what is already checkpointed, write changed
/// documents, delete vanished ones, record failures, append the checkpoint rows. Commits all of it
/// or nothing.
///
/// Three ways to write, each tried when the one before meets a row it did not expect (a unique
/// violation rolls the transaction back, and the batch is written again the next way):
/// - **blind**: no lookup at all, plain COPY of the documents and the checkpoints. For a batch of
///   files that only imports (no vanished file) into a source without quarantined paths: what a
///   backfill writes. The lookup cost the server about 8 µs a file (SPEC §10).
/// - **lookup**: one primary-key probe per path (checkpoint, document, failure) inside the
///   transaction, then plain COPY of the new documents; documents that have a row go through a
///   staging table and an upsert. Only a row that another transaction committed meanwhile (the same
///   path republished to two workers) can still conflict.
/// - **upsert**: the same with the checkpoints inserted `ON CONFLICT DO NOTHING`.
/// After a blind write met a row, the next `blindPause` batches of this writer use the lookup: an
/// incremental run, whose files mostly have rows, pays one failed COPY in that many batches.
struct BatchWriter: Sendable {
    let schema: Schema
    let worker: String
    /// The transaction's statement and lock timeouts: a batch cut off from its worker, or waiting
    /// on a lock that someone else holds, ends on the server by the batch deadline (SPEC §6.12).
    var timeout: Duration = WorkerOptions().batchTimeout
    /// Checked first in every transaction when a lease holder writes (a coordinator importing
    /// directly): a holder that has been superseded writes nothing.
    var fence: (@Sendable (PostgresConnection) async throws -> Void)?

    /// Batches left to write with a lookup before the next blind attempt; shared by the copies of
    /// this writer (one per worker).
    private let lookupsBeforeBlind = LookupsBeforeBlind()

    final class LookupsBeforeBlind: Sendable {
        let count = Mutex(0)
        func withLock<T>(_ body: (inout Int) -> T) -> T { count.withLock { body(&$0) } }
    }
    static let blindPause = 32

    init(schema: Schema, worker: String, timeout: Duration = WorkerOptions().batchTimeout,
         fence: (@Sendable (PostgresConnection) async throws -> Void)? = nil) {
        (self.schema, self.worker, self.timeout, self.fence) = (schema, worker, timeout, fence)
    }

    private enum Way { case blind, lookup, upsert }

    /// A blind write found quarantined paths of the source: they must be looked up (and cleared).
    private struct NeedsLookup: Error {}

    /// Returns the outcome counts of the paths this transaction checkpointed.
    func write(run: Int64, sourceID: String, outcomes: [(path: String, outcome: FileOutcome)],
               on connection: PostgresConnection) async throws -> OutcomeCounts {
        let onlyImports = outcomes.allSatisfy { if case .vanished = $0.outcome { false } else { true } }
        let blind = onlyImports && lookupsBeforeBlind.withLock { pause in
            defer { pause = max(0, pause - 1) }
            return pause == 0
        }
        if blind {
            do {
                return try await write(run: run, sourceID: sourceID, outcomes: outcomes, way: .blind, on: connection)
            } catch let error as PostgresError where error.code == .uniqueViolation {
                lookupsBeforeBlind.withLock { $0 = Self.blindPause }
            } catch is NeedsLookup {
                lookupsBeforeBlind.withLock { $0 = Self.blindPause }
            }
        }
        do {
            return try await write(run: run, sourceID: sourceID, outcomes: outcomes, way: .lookup, on: connection)
        } catch let error as PostgresError where error.code == .uniqueViolation {
            return try await write(run: run, sourceID: sourceID, outcomes: outcomes, way: .upsert, on: connection)
        }
    }

    /// What the database holds for one path of the batch.
    private struct Known {
        var checkpointed = false
        var sha256: String?
        var failed = false
    }

    private func write(run: Int64, sourceID: String, outcomes: [(path: String, outcome: FileOutcome)], way: Way,
                       on connection: PostgresConnection) async throws -> OutcomeCounts {
        try await connection.withTransaction { c in
            let milliseconds = String(Int64(timeout.seconds * 1000))
            let quarantined = try await c.query("""
                SELECT set_config('statement_timeout', \(milliseconds), true), set_config('lock_timeout', \(milliseconds), true),
                       \(way == .blind) AND EXISTS (SELECT 1 FROM \(unescaped: schema.failures) WHERE source_id = \(sourceID))
                """)[0].decode(Bool.self, 2)
            if quarantined { throw NeedsLookup() }
            try await fence?(c)
            let plainCopy = way != .upsert
            // Lookups go path by path through the primary keys, as scalar subqueries the planner
            // cannot turn into joins: `run_id = $1 AND path = ANY($2)` reads every row of the run
            // whenever the statistics are older than the run (they always are while it fills the
            // table), which made a 100,000-file backfill quadratic.
            var known: [ExactPath: Known] = [:]
            if way != .blind {
                for row in try await c.query("""
                    SELECT q.path,
                           (SELECT true FROM \(unescaped: schema.checkpoints) k WHERE k.run_id = \(run) AND k.path = q.path),
                           (SELECT d.sha256 FROM \(unescaped: schema.documents) d WHERE d.source_id = \(sourceID) AND d.path = q.path),
                           (SELECT true FROM \(unescaped: schema.failures) f WHERE f.source_id = \(sourceID) AND f.path = q.path)
                      FROM unnest(\(outcomes.map(\.path))::text[]) AS q(path)
                    """) {
                    known[ExactPath(try row.decode(String.self, 0))] = Known(
                        checkpointed: try row.decode(Bool?.self, 1) ?? false, sha256: try row.decode(String?.self, 2),
                        failed: try row.decode(Bool?.self, 3) ?? false)
                }
            }
            let todo = outcomes.filter { known[ExactPath($0.path)]?.checkpointed != true }
            guard !todo.isEmpty else { return OutcomeCounts() }

            var counts = OutcomeCounts()
            var checkpointOutcomes: [Outcome] = []
            var inserts: [PostgresBinaryRow] = []
            var upserts: [PostgresBinaryRow] = []
            var deletions: [String] = []
            var clearedFailures: [String] = []
            var failures: [(path: String, reason: String, message: String, attempts: Int)] = []
            for (path, outcome) in todo {
                let stored = known[ExactPath(path)] ?? Known()
                switch outcome {
                case .document(let sha256, _, let row):
                    if stored.sha256 == sha256 {
                        counts.unchanged += 1
                        checkpointOutcomes.append(.unchanged)
                    } else {
                        if stored.sha256 == nil && plainCopy { inserts.append(row) } else { upserts.append(row) }
                        counts.imported += 1
                        checkpointOutcomes.append(.imported)
                    }
                    if stored.failed { clearedFailures.append(path) }
                case .vanished:
                    // `deleted` counts rows removed: a path that never had a row changes nothing.
                    if stored.sha256 != nil {
                        deletions.append(path)
                        counts.deleted += 1
                        checkpointOutcomes.append(.deleted)
                    } else {
                        counts.unchanged += 1
                        checkpointOutcomes.append(.unchanged)
                    }
                    if stored.failed { clearedFailures.append(path) }
                case .failed(let reason, let message, let attempts):
                    failures.append((path, reason, message, attempts))
                    counts.failed += 1
                    checkpointOutcomes.append(.failed)
                }
            }

            if !inserts.isEmpty {
                try await c.copyBinary("COPY \(unescaped: schema.documents) (\(unescaped: Self.columns)) FROM STDIN (FORMAT binary)",
                                       rows: inserts)
            }
            if !upserts.isEmpty { try await upsert(upserts, on: c) }
            if !deletions.isEmpty {
                try await c.execute("""
                    DELETE FROM \(unescaped: schema.documents) WHERE source_id = \(sourceID) AND path = ANY(\(deletions)::text[])
                    """)
            }
            let failureStore = FailureStore(schema: schema)
            try await failureStore.delete(clearedFailures, sourceID: sourceID, on: c)
            try await failureStore.record(failures, run: run, sourceID: sourceID, on: c)
            try await CheckpointStore(schema: schema).append(Array(zip(todo.map(\.path), checkpointOutcomes)), run: run,
                                                            worker: worker, existing: plainCopy ? .fail : .skip, on: c)
            return counts
        }
    }

    private static let columns = "source_id, path, sha256, size, mtime, kind, title, frontmatter, frontmatter_error, body, run_id"

    /// A document's row of `documents` (`columns`, in order), in COPY's binary format: encoded by the
    /// thread that read the file, so that a batch's transaction only sends bytes.
    static func row(_ d: ImportedDocument, mtime: Int64, sourceID: String, run: Int64) -> PostgresBinaryRow {
        var row = PostgresBinaryRow(fields: 11, capacity: 160 + sourceID.utf8.count + d.path.utf8.count
                                        + (d.frontmatterJSON?.utf8.count ?? 0) + (d.body?.utf8.count ?? 0))
        row.text(sourceID)
        row.text(d.path)
        row.text(d.sha256)
        row.bigint(Int64(d.size))
        row.timestamptz(micros: mtime)
        row.text(d.kind.rawValue)
        row.text(d.title)
        row.jsonb(d.frontmatterJSON)
        row.text(d.frontmatterError)
        row.text(d.body)
        row.bigint(run)
        return row
    }

    private func upsert(_ rows: [PostgresBinaryRow], on c: PostgresConnection) async throws {
        // Per session; emptied at every commit. lz4 where the server has it (SPEC §10: the body's
        // compression is most of the server's cost), else the server's default.
        try await c.execute("""
            CREATE TEMP TABLE IF NOT EXISTS filefleet_staging
              (LIKE \(unescaped: schema.documents) INCLUDING DEFAULTS INCLUDING COMPRESSION) ON COMMIT DELETE ROWS
            """)
        let columns = Self.columns
        try await c.copyBinary("COPY filefleet_staging (\(unescaped: columns)) FROM STDIN (FORMAT binary)", rows: rows)
        try await c.execute("""
            INSERT INTO \(unescaped: schema.documents) (\(unescaped: columns))
            SELECT \(unescaped: columns) FROM filefleet_staging
            ON CONFLICT (source_id, path) DO UPDATE
               SET sha256 = excluded.sha256, size = excluded.size, mtime = excluded.mtime, kind = excluded.kind,
                   title = excluded.title, frontmatter = excluded.frontmatter,
                   frontmatter_error = excluded.frontmatter_error, body = excluded.body,
                   run_id = excluded.run_id, imported_at = now()
            """)
    }
}
