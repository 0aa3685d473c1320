import FleetCrypto
public import FleetPostgres
import Foundation
import Synchronization

public struct DirectoryPlanner: Sendable {
    public let schema: Schema

    public init(schema: Schema) {
        self.schema = schema
    }

    /// Plans a run, staged on `c` (`DirectoryPlan.table`): store it on the same connection.
    /// `pool` counts the stored documents meanwhile, on a connection of its own. `large` is called
    /// (it may be twice) as soon as the run is sure to hold more than `largeAbove` paths, from
    /// the walk or after it: the caller starts what a large run needs while the planning goes on.
    ///
    /// Memory does not grow with the tree: the walk streams into a temporary table through COPY
    /// (at most a few chunks of 20,000 files in flight), and the server compares it with the stored
    /// documents in one pass (a hash full join). Only the files whose size matches but whose mtime
    /// does not come back, a page at a time, to be hashed here.
    public func plan(sourceID: String, root: String, filter: PathFilter, largeAbove: Int = .max,
                     large: @escaping @Sendable () -> Void = {}, on c: PostgresConnection,
                     counting pool: PostgresPool) async throws -> DirectoryPlan {
        var plan = DirectoryPlan()
        let started = ContinuousClock.now
        // The count reads the source's index (a quarter of a second at a million documents): it
        // runs beside the walk, which needs it only to tell early that the run is large.
        let stored = Mutex<Int?>(nil)
        let counting = Task {
            let n = try await pool.withConnection { c in
                try await c.query("SELECT count(*) FROM \(unescaped: schema.documents) WHERE source_id = \(sourceID)")[0]
                    .decode(Int.self, 0)
            }
            stored.withLock { $0 = n }
            return n
        }
        defer { counting.cancel() }
        try await c.execute("DROP TABLE IF EXISTS pg_temp.filefleet_listing, \(unescaped: DirectoryPlan.table), pg_temp.filefleet_verdict")
        try await c.execute("""
            CREATE TEMPORARY TABLE filefleet_listing (path text NOT NULL, size bigint NOT NULL, micros bigint NOT NULL)
            """)
        let walked = try await copyWalk(root: root, filter: filter, largeAbove: largeAbove, large: large, on: c,
                                        into: "COPY pg_temp.filefleet_listing (path, size, micros) FROM STDIN",
                                        row: { file, chunk in
            // Microseconds, made a timestamp by the server (exact up to 2^53 µs, the year 2255).
            PostgresCopyWriter.encodeRow([file.path, file.size, file.mtimeMicros], into: &chunk)
        }, beyondStored: { listed in stored.withLock { $0.map { listed - $0 } } })
        (plan.listed, plan.invalidNames, plan.longPaths) = (walked.listed, walked.invalidNames, walked.longPaths)
        plan.unreadableDirectories = walked.unreadable
        plan.stored = try await counting.value
        if plan.listed - plan.stored > largeAbove { large() }  // if the walk was too quick to tell
        plan.walking = .now - started
        try await c.execute("ANALYZE pg_temp.filefleet_listing")

        // One pass over both sides. Same size and mtime: unchanged, not in the plan at all.
        try await c.execute("""
            CREATE TEMPORARY TABLE filefleet_plan AS
            SELECT coalesce(l.path, d.path) AS path,
                   CASE WHEN d.path IS NULL THEN 'new' WHEN l.path IS NULL THEN 'gone'
                        WHEN l.size <> d.size THEN 'changed' ELSE 'check' END AS action,
                   l.size, to_timestamp(0) + l.micros * interval '1 microsecond' AS mtime
              FROM pg_temp.filefleet_listing l
              FULL JOIN (SELECT path, size, mtime FROM \(unescaped: schema.documents) WHERE source_id = \(sourceID)) d
                ON d.path = l.path
             WHERE l.path IS NULL OR d.path IS NULL OR l.size <> d.size
                OR d.mtime <> to_timestamp(0) + l.micros * interval '1 microsecond'
            """)
        try await c.execute("DROP TABLE pg_temp.filefleet_listing")
        try await c.execute("ANALYZE \(unescaped: DirectoryPlan.table)")
        try await resolveChecks(sourceID: sourceID, root: root, on: c)

        // Paths that failed before and are planned for nothing else, then the names the walk
        // quarantines, unless an escaped spelling equals a real path (a name with a literal `\x..`).
        let quarantinable = [InvalidName.reason, LongPath.reason, UnreadableDirectory.reason]
        try await c.execute("""
            INSERT INTO \(unescaped: DirectoryPlan.table) (path, action)
            SELECT f.path, 'failed' FROM \(unescaped: schema.failures) f
             WHERE f.source_id = \(sourceID) AND f.reason <> ALL(\(quarantinable)::text[])
               AND NOT EXISTS (SELECT 1 FROM \(unescaped: DirectoryPlan.table) p WHERE p.path = f.path AND p.action <> 'touch')
            """)
        try await markRemoved(filter: filter, on: c)
        plan.invalidNames = try await addQuarantined(plan.invalidNames, on: c)
        plan.longPaths = try await addQuarantined(plan.longPaths, on: c)
        plan.unreadableDirectories = try await addQuarantined(plan.unreadableDirectories, on: c)
        // Again: the checks turned rows into touches and rows were added; the touch and the store
        // of the plan are planned from these statistics.
        try await c.execute("ANALYZE \(unescaped: DirectoryPlan.table)")
        for row in try await c.query("SELECT action, count(*) FROM \(unescaped: DirectoryPlan.table) GROUP BY action") {
            let n = try row.decode(Int.self, 1)
            switch try row.decode(String.self, 0) {
            case "touch": plan.touched = n
            case "gone": plan.deletions += n; plan.planned += n
            case "removed": plan.removed = n; plan.deletions += n; plan.planned += n
            default: plan.planned += n
            }
        }
        plan.comparing = .now - started - plan.walking
        return plan
    }

    /// Whether the source has nothing a plan compares the listing with: no document, no
    /// quarantined path (its first sync, a backfill).
    public func isFirstSync(sourceID: String, on c: PostgresConnection) async throws -> Bool {
        try await c.query("""
            SELECT NOT EXISTS (SELECT 1 FROM \(unescaped: schema.documents) WHERE source_id = \(sourceID))
               AND NOT EXISTS (SELECT 1 FROM \(unescaped: schema.failures) WHERE source_id = \(sourceID))
            """)[0].decode(Bool.self, 0)
    }

    /// The plan of a first sync (`isFirstSync`): every listed file is new, so the walk is copied
    /// straight into the planned paths of `run` as it goes, with no staging and no comparison;
    /// the names it quarantines are planned after it. Call inside the fenced transaction that
    /// created `run`, which then holds `planned` paths. `large` as for `plan`.
    public func planFirst(run: Int64, root: String, filter: PathFilter, largeAbove: Int = .max,
                          large: @escaping @Sendable () -> Void = {}, on c: PostgresConnection) async throws -> DirectoryPlan {
        var plan = DirectoryPlan()
        let started = ContinuousClock.now
        let walked = try await copyWalk(root: root, filter: filter, largeAbove: largeAbove, large: large, on: c,
                                        into: "COPY \(unescaped: schema.plannedPaths) (run_id, path) FROM STDIN",
                                        row: { file, chunk in PostgresCopyWriter.encodeRow([run, file.path], into: &chunk) },
                                        beyondStored: { $0 })
        plan.listed = walked.listed
        plan.walking = .now - started
        // Unless an escaped spelling equals a real path (a name with a literal `\x..`).
        func addQuarantined(_ names: [String]) async throws -> [String] {
            guard !names.isEmpty else { return [] }
            return try await c.query("""
                INSERT INTO \(unescaped: schema.plannedPaths) (run_id, path) SELECT \(run), n FROM unnest(\(names)::text[]) AS t(n)
                ON CONFLICT DO NOTHING RETURNING path
                """).map { try $0.decode(String.self, 0) }
        }
        plan.invalidNames = try await addQuarantined(walked.invalidNames)
        plan.longPaths = try await addQuarantined(walked.longPaths)
        plan.unreadableDirectories = try await addQuarantined(walked.unreadable)
        plan.planned = plan.listed + plan.invalidNames.count + plan.longPaths.count + plan.unreadableDirectories.count
        plan.comparing = .now - started - plan.walking
        return plan
    }

    /// Refreshes the mtime of documents whose content did not change, from the staged plan.
    /// Call inside a fenced transaction, on the planning connection.
    public func touch(_ plan: DirectoryPlan, sourceID: String, on c: PostgresConnection) async throws {
        guard plan.touched > 0 else { return }
        try await c.execute("""
            UPDATE \(unescaped: schema.documents) d
               SET mtime = p.mtime
              FROM \(unescaped: DirectoryPlan.table) p
             WHERE p.action = 'touch' AND d.source_id = \(sourceID) AND d.path = p.path
            """)
    }

    /// Deletes the rows of files that no longer belong to the source although they may still be on
    /// disk (excluded or hidden by this run's filter), and checkpoints them `deleted`: a worker would
    /// find the file and import it again. Call inside the fenced transaction that created `run`.
    public func remove(_ plan: DirectoryPlan, run: Int64, sourceID: String, on c: PostgresConnection) async throws {
        guard plan.removed > 0 else { return }  // three scans of the plan saved on every other run
        try await c.execute("""
            DELETE FROM \(unescaped: schema.documents) d USING \(unescaped: DirectoryPlan.table) p
             WHERE p.action = 'removed' AND d.source_id = \(sourceID) AND d.path = p.path
            """)
        try await FailureStore(schema: schema).delete(removedIn: plan, sourceID: sourceID, on: c)
        try await CheckpointStore(schema: schema).append(removedIn: plan, run: run, on: c)
    }

    /// Drops the staged plan (it is the session's: a pooled connection outlives the run).
    public func discard(on c: PostgresConnection) async throws {
        try await c.execute("DROP TABLE IF EXISTS \(unescaped: DirectoryPlan.table)")
    }

    /// Walks `root` on threads of its own and copies each file as found, a `row` each, through the
    /// COPY statement `into`. `beyondStored` says by how many files a listing of n outnumbers the
    /// stored documents, once known.
    private func copyWalk(root: String, filter: PathFilter, largeAbove: Int, large: @escaping @Sendable () -> Void,
                          on c: PostgresConnection, into copy: PostgresQuery,
                          row: @escaping @Sendable (ListedFile, inout [UInt8]) -> Void,
                          beyondStored: @escaping @Sendable (Int) -> Int?)
        async throws -> (listed: Int, invalidNames: [String], longPaths: [String], unreadable: [String]) {
        let handoff = ChunkHandoff<[UInt8]>(ahead: 4)
        let walk = Task {
            try await runBlocking { () throws -> (Int, [String], [String], [String]) in
                defer { handoff.finish() }
                var (listed, invalidNames, longPaths, unreadable) = (0, [String](), [String](), [String]())
                var chunk: [UInt8] = [], inChunk = 0
                var announced = false
                try DirectoryWalker(root: root, filter: filter).walk(file: { file in
                    row(file, &chunk)
                    listed += 1
                    inChunk += 1
                    if inChunk == 20_000 {
                        // More files than stored documents: at least that many are new.
                        if !announced, let beyond = beyondStored(listed), beyond > largeAbove { announced = true; large() }
                        try handoff.put(chunk)
                        (chunk, inChunk) = ([], 0)
                    }
                }, invalidName: { invalidNames.append($0) }, tooLong: { longPaths.append(LongPath.key($0)) },
                   unreadable: { unreadable.append($0) })
                if !chunk.isEmpty { try handoff.put(chunk) }
                return (listed, invalidNames, longPaths, unreadable)
            }
        }
        do {
            try await c.copyFrom(copy) { writer in
                for await chunk in handoff.chunks {
                    try await writer.write(chunk)
                    handoff.took()
                }
                // The walk's own error (an unreadable root) wins over the rows it sent.
                _ = try await walk.value
            }
        } catch {
            handoff.cancel()
            _ = try? await walk.value
            throw error
        }
        return try await walk.value
    }

    /// Files of the same size and another mtime: hashed as a worker reads them (so that a link now
    /// pointing outside the root is not hashed), a page at a time. An equal hash makes the row a
    /// `touch`, anything else `changed`.
    private func resolveChecks(sourceID: String, root: String, on c: PostgresConnection) async throws {
        try await c.withTransaction { c in
            try await c.execute("CREATE TEMPORARY TABLE filefleet_verdict (path text NOT NULL, same boolean NOT NULL)")
            try await c.execute("""
                DECLARE checks NO SCROLL CURSOR FOR
                SELECT p.path, p.size, d.sha256 FROM \(unescaped: DirectoryPlan.table) p
                  JOIN \(unescaped: schema.documents) d ON d.source_id = \(sourceID) AND d.path = p.path
                 WHERE p.action = 'check'
                """)
            var any = false
            while true {
                let rows = try await c.query("FETCH 5000 FROM checks")
                if rows.isEmpty { break }
                any = true
                let candidates = try rows.map {
                    (path: try $0.decode(String.self, 0), size: try $0.decode(Int.self, 1), sha256: try $0.decode(String.self, 2))
                }
                let verdicts = try await runBlocking { () -> [UInt8] in
                    var chunk: [UInt8] = []
                    for (path, size, sha256) in candidates {
                        let same = (try? FileReader.read(root: root, relativePath: path, maxBytes: size))
                            .map { SHA256.hex($0.bytes) == sha256 } ?? false
                        PostgresCopyWriter.encodeRow([path, same], into: &chunk)
                    }
                    return chunk
                }
                try await c.copyFrom("COPY pg_temp.filefleet_verdict (path, same) FROM STDIN") { try await $0.write(verdicts) }
            }
            try await c.execute("CLOSE checks")
            if any {
                try await c.execute("ANALYZE pg_temp.filefleet_verdict")
                try await c.execute("""
                    UPDATE \(unescaped: DirectoryPlan.table) p SET action = CASE WHEN v.same THEN 'touch' ELSE 'changed' END
                      FROM pg_temp.filefleet_verdict v WHERE p.path = v.path AND p.action = 'check'
                    """)
            }
            try await c.execute("DROP TABLE pg_temp.filefleet_verdict")
        }
    }

    /// Stored documents (and failed paths) the listing lacks because this run's filter leaves them
    /// out (an exclude added, an include narrowed, a hidden file no longer included) become
    /// `removed`: their rows go although the files are there. A page at a time.
    private func markRemoved(filter: PathFilter, on c: PostgresConnection) async throws {
        try await c.withTransaction { c in
            try await c.execute("""
                DECLARE gone NO SCROLL CURSOR FOR
                SELECT path FROM \(unescaped: DirectoryPlan.table) WHERE action IN ('gone', 'failed')
                """)
            while true {
                let rows = try await c.query("FETCH 5000 FROM gone")
                if rows.isEmpty { break }
                let removed = try rows.map { try $0.decode(String.self, 0) }.filter { !filter.takes($0) }
                guard !removed.isEmpty else { continue }
                // The cursor reads the snapshot it was declared in: these updates do not move it.
                try await c.execute("""
                    UPDATE \(unescaped: DirectoryPlan.table) SET action = 'removed'
                     WHERE action IN ('gone', 'failed') AND path = ANY(\(removed)::text[])
                    """)
            }
            try await c.execute("CLOSE gone")
        }
    }

    /// Adds quarantined names to the plan unless already planned; returns those it added.
    private func addQuarantined(_ names: [String], on c: PostgresConnection) async throws -> [String] {
        guard !names.isEmpty else { return [] }
        return try await c.query("""
            INSERT INTO \(unescaped: DirectoryPlan.table) (path, action)
            SELECT n, 'quarantined' FROM unnest(\(names)::text[]) AS t(n)
             WHERE NOT EXISTS (SELECT 1 FROM \(unescaped: DirectoryPlan.table) p WHERE p.path = t.n AND p.action <> 'touch')
            RETURNING path
            """).map { try $0.decode(String.self, 0) }
    }
}
