import FleetPostgres
import Foundation

/// The transaction of one batch of one run: skip what is already checkpointed, write changed
/// documents, delete vanished ones, record failures, append the checkpoint rows. Commits all of it
/// or nothing.
///
/// Five round trips for a batch of new files (SPEC §10): one lookup, then plain COPY of the new
/// documents and of the checkpoint rows; only documents that have a row go through a staging table
/// and an upsert. The lookup is taken inside the transaction, so the plain COPY can only meet a row
/// that another transaction committed meanwhile (the same path republished to two workers): that
/// raises a unique violation, and the batch is written again the careful way.
struct BatchWriter: Sendable {
    let schema: Schema
    let worker: String
    /// The transaction's statement and lock timeouts: a batch cut off from its worker, or waiting
    /// on a lock that someone else holds, ends on the server by the batch deadline (SPEC §6.12).
    var timeout: Duration = WorkerOptions().batchTimeout
    /// Checked first in every transaction when a lease holder writes (a coordinator importing
    /// directly): a holder that has been superseded writes nothing.
    var fence: (@Sendable (PostgresConnection) async throws -> Void)?

    /// Returns the outcome counts of the paths this transaction checkpointed.
    func write(run: Int64, sourceID: String, outcomes: [(path: String, outcome: FileOutcome)],
               on connection: PostgresConnection) async throws -> OutcomeCounts {
        do {
            return try await write(run: run, sourceID: sourceID, outcomes: outcomes, plainCopy: true, on: connection)
        } catch let error as PostgresError where error.code == .uniqueViolation {
            return try await write(run: run, sourceID: sourceID, outcomes: outcomes, plainCopy: false, on: connection)
        }
    }

    /// What the database holds for one path of the batch.
    private struct Known {
        var checkpointed = false
        var sha256: String?
        var failed = false
    }

    private func write(run: Int64, sourceID: String, outcomes: [(path: String, outcome: FileOutcome)], plainCopy: Bool,
                       on connection: PostgresConnection) async throws -> OutcomeCounts {
        try await connection.withTransaction { c in
            let milliseconds = String(Int64(timeout.seconds * 1000))
            try await c.query("""
                SELECT set_config('statement_timeout', \(milliseconds), true), set_config('lock_timeout', \(milliseconds), true)
                """)
            try await fence?(c)
            // Lookups go path by path through the primary keys, as scalar subqueries the planner
            // cannot turn into joins: `run_id = $1 AND path = ANY($2)` reads every row of the run
            // whenever the statistics are older than the run (they always are while it fills the
            // table), which made a 100,000-file backfill quadratic.
            var known: [ExactPath: Known] = [:]
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
            let todo = outcomes.filter { known[ExactPath($0.path)]?.checkpointed != true }
            guard !todo.isEmpty else { return OutcomeCounts() }

            var counts = OutcomeCounts()
            var checkpointOutcomes: [Outcome] = []
            var inserts: [(ImportedDocument, Int64)] = []
            var upserts: [(ImportedDocument, Int64)] = []
            var deletions: [String] = []
            var clearedFailures: [String] = []
            var failures: [(path: String, reason: String, message: String, attempts: Int)] = []
            for (path, outcome) in todo {
                let stored = known[ExactPath(path)] ?? Known()
                switch outcome {
                case .document(let document, let mtime):
                    if stored.sha256 == document.sha256 {
                        counts.unchanged += 1
                        checkpointOutcomes.append(.unchanged)
                    } else {
                        if stored.sha256 == nil && plainCopy { inserts.append((document, mtime)) } else { upserts.append((document, mtime)) }
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
                try await c.copyFrom("COPY \(unescaped: schema.documents) (\(unescaped: Self.columns)) FROM STDIN") { writer in
                    for (d, mtime) in inserts { try await writer.writeRow(Self.row(d, mtime: mtime, sourceID: sourceID, run: run)) }
                }
            }
            if !upserts.isEmpty { try await upsert(upserts, sourceID: sourceID, run: run, on: c) }
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

    private static func row(_ d: ImportedDocument, mtime: Int64, sourceID: String, run: Int64) -> [any PostgresEncodable] {
        [sourceID, d.path, d.sha256, d.size, PostgresTimestamp.format(micros: mtime), d.kind.rawValue,
         d.title, d.frontmatterJSON, d.frontmatterError, d.body, run]
    }

    private func upsert(_ documents: [(ImportedDocument, Int64)], sourceID: String, run: Int64,
                        on c: PostgresConnection) async throws {
        // Per session; emptied at every commit. lz4 where the server has it (SPEC §10: the body's
        // compression is most of the server's cost), else the server's default.
        try await c.execute("""
            CREATE TEMP TABLE IF NOT EXISTS filefleet_staging
              (LIKE \(unescaped: schema.documents) INCLUDING DEFAULTS INCLUDING COMPRESSION) ON COMMIT DELETE ROWS
            """)
        let columns = Self.columns
        try await c.copyFrom("COPY filefleet_staging (\(unescaped: columns)) FROM STDIN") { writer in
            for (d, mtime) in documents { try await writer.writeRow(Self.row(d, mtime: mtime, sourceID: sourceID, run: run)) }
        }
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
