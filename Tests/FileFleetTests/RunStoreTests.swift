@testable import FileFleet
import FleetPostgres
import Foundation
import Testing
import TestSupport

/// The SQL of runs and plans against the real server, in a schema of its own.
@Suite struct RunStoreTests {
    let schema: Schema
    let url: String
    let store: RunStore

    init() async throws {
        let environment = try await TestEnvironment.shared()
        schema = Schema(try await environment.makeSchema().name)
        url = environment.postgresURL
        store = RunStore(schema: schema)
        let pool = PostgresPool(url: url, maxConnections: 1)
        try await schema.migrate(pool)
        await pool.close()
    }

    /// Issue 13: a resumed run's remaining set, planned from statistics taken while the tables were
    /// nearly empty (as after the first runs of a fleet), must not become a nested loop.
    @Test(.timeLimit(.minutes(2)))
    func runStoreRemainingPathsStaysLinearWithStatisticsOlderThanTheRun() async throws {
        try await PostgresConnection.withConnection(url) { c in
            // No autovacuum: the statistics stay those of the ANALYZE below for the whole test.
            for table in [schema.plannedPaths, schema.checkpoints] {
                try await c.execute("ALTER TABLE \(unescaped: table) SET (autovacuum_enabled = false)")
            }
            _ = try await SourceStore(schema: store.schema).register(id: "stats", root: "/stats", mode: .directory, on: c)
            let old = try await store.createRun(sourceID: "stats", mode: .directory, pin: nil, token: 1,
                                                plan: (0..<10).map { "old/\($0).md" }, maxFileBytes: 1 << 20,
                                                maxAttempts: 3, on: c)
            try await bank(run: old.id, (0..<10).map { "old/\($0).md" }, on: c)
            try await store.finish(run: old.id, state: .completed, on: c)
            try await c.execute("ANALYZE \(unescaped: schema.plannedPaths)")
            try await c.execute("ANALYZE \(unescaped: schema.checkpoints)")

            let plan = (0..<50_000).map { "d\($0 % 100)/note-\($0).md" }
            let run = try await store.createRun(sourceID: "stats", mode: .directory, pin: nil, token: 1, plan: plan,
                                                maxFileBytes: 1 << 20, maxAttempts: 3, on: c)
            try await bank(run: run.id, plan.enumerated().filter { $0.offset % 2 == 0 }.map(\.element), on: c)

            // Each page is two range scans of a primary key, whatever the statistics: no join, no
            // sequential scan (which would make the pages quadratic in the run's size).
            for query in [store.plannedPageQuery(run: run.id, after: nil, limit: 5000),
                          store.plannedPageQuery(run: run.id, after: "d42/", limit: 5000),
                          CheckpointStore(schema: store.schema).bankedRangeQuery(run: run.id, from: "d42/", through: "d43/")] {
                let explain = try await c.query(PostgresQuery(unsafeSQL: "EXPLAIN " + query.sql, binds: query.binds))
                    .map { try $0.decode(String.self, 0) }.joined(separator: "\n")
                print("run store: a remaining-paths page query with statistics older than the run:\n\(explain)")
                #expect(!explain.contains("Nested Loop") && !explain.contains("Seq Scan") && explain.contains("_pkey"), "\(explain)")
            }

            let start = ContinuousClock.now
            var remaining: [String] = [], after: String?, pages = 0
            repeat {
                let page = try await store.remainingPaths(run: run.id, after: after, limit: 5000, on: c)
                remaining += page.paths
                after = page.next
                pages += 1
            } while after != nil
            let elapsed = ContinuousClock.now - start
            print("run store: remainingPaths of 50,000 planned, 25,000 banked: \(remaining.count) in \(pages) pages, \(elapsed)")
            #expect(remaining.count == 25_000)
            #expect(Set(remaining) == Set(plan.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)))
            #expect(pages == 10 || pages == 11)  // 50,000 planned paths, 5,000 a page (one empty page at an exact end)
            // ~0.1 s alone, ~2 s with the whole suite on two cores; the nested loop took minutes.
            #expect(elapsed < .seconds(10))
        }
    }

    /// SPEC §6.5: an aborted sync says why on its run only while nobody has taken the lease since
    /// (released, the lease keeps the token); a superseded holder leaves its successor's run alone.
    @Test(.timeLimit(.minutes(1)))
    func runStoreRecordsAStopOnlyWhileTheLeaseKeepsTheToken() async throws {
        try await PostgresConnection.withConnection(url) { c in
            let leases = LeaseStore(schema: schema)
            let timing = LeaseTiming(heartbeat: .seconds(1), ttl: .seconds(5))
            let name = "sync:stopped"
            _ = try await SourceStore(schema: store.schema).register(id: "stopped", root: "/stopped", mode: .directory, on: c)
            let first = try await leases.acquire(name, holder: "first", timing: timing, on: c)
            let run = try await store.createRun(sourceID: "stopped", mode: .directory, pin: nil, token: first, plan: ["a.md"],
                                                maxFileBytes: 1 << 20, maxAttempts: 3, on: c)
            @Sendable func stopReason() async throws -> String? {
                try await c.query("SELECT stop_reason FROM \(unescaped: schema.runs) WHERE id = \(run.id)")[0].decode(String?.self, 0)
            }
            // `Lease.hold` releases before the stop is recorded.
            try await leases.release(name, holder: "first", token: first, on: c)
            #expect(try await store.recordStop(RunStop(NoWorkers(waited: .seconds(1))), run: run.id, lease: (name, first), on: c))
            #expect(try await stopReason() == NoWorkers.reason)

            // Taken up by another holder, which clears the stop; the first one's stop is refused.
            let second = try await leases.acquire(name, holder: "second", timing: timing, on: c)
            try await store.recordStop(nil, run: run.id, on: c)
            #expect(try await !store.recordStop(RunStop(LeaseLost(name: name, token: first)), run: run.id, lease: (name, first), on: c))
            #expect(try await stopReason() == nil)
            #expect(try await store.recordStop(RunStop(NoWorkers(waited: .seconds(1))), run: run.id, lease: (name, second), on: c))
            #expect(try await stopReason() == NoWorkers.reason)
        }
    }

    /// Issue 13: a first sync copies its walk straight into the run (`planFirst`) instead of
    /// staging and comparing it. It must plan exactly what the general plan plans for the same
    /// tree: hidden files left out, names that are not UTF-8 and paths too long to be keys
    /// quarantined, and a real file spelled like an escaped name planned once.
    @Test(.timeLimit(.minutes(1)))
    func aFirstSyncPlansWhatTheGeneralPlanPlans() async throws {
        let tree = try HostileBase("first-plan")
        for i in 0..<300 { try tree.write("notes/\(i % 7)/n\(i).md", "# \(i)\n") }
        try tree.write(".hidden.md", "hidden")
        try tree.rawFile([0x62, 0x61, 0x64, 0xff, 0x2e, 0x6d, 0x64], "bad")          // bad\xff.md
        try tree.rawFile([0x74, 0x77, 0x69, 0x6e, 0xfe], "twin")                      // twin\xfe ...
        try tree.write(#"twin\xfe"#, "... and a real file spelled like its escape")
        let long = (0..<12).map { "d\($0)" + String(repeating: "x", count: 197) }.joined(separator: "/")
        try tree.write(long + "/far.md", "far")
        #expect(long.utf8.count > LongPath.maxBytes)

        let pool = PostgresPool(url: url, maxConnections: 2)
        defer { Task { await pool.close() } }
        try await PostgresConnection.withConnection(url) { c in
            let sources = SourceStore(schema: schema)
            for id in ["first", "general"] { _ = try await sources.register(id: id, root: tree.root, mode: .directory, on: c) }
            let planner = DirectoryPlanner(schema: schema)
            #expect(try await planner.isFirstSync(sourceID: "first", on: c))
            var first = DirectoryPlan()
            let firstRun = try await c.withTransaction { c in
                try await store.createRun(sourceID: "first", token: 0, maxFileBytes: 1 << 20, maxAttempts: 3, on: c) { run in
                    first = try await planner.planFirst(run: run.id, root: tree.root, filter: PathFilter(), on: c)
                    return first.planned
                }
            }
            let general = try await planner.plan(sourceID: "general", root: tree.root, filter: PathFilter(), on: c, counting: pool)
            let generalRun = try await store.createRun(sourceID: "general", staged: general, token: 0, maxFileBytes: 1 << 20,
                                                       maxAttempts: 3, on: c)
            try await planner.discard(on: c)

            func planned(_ run: RunRecord) async throws -> Set<String> {
                Set(try await c.query("SELECT path FROM \(unescaped: schema.plannedPaths) WHERE run_id = \(run.id)")
                    .map { try $0.decode(String.self, 0) })
            }
            let paths = try await planned(firstRun)
            #expect(paths == (try await planned(generalRun)))
            #expect(paths.count == 303)  // 300 notes, bad\xff.md, twin\xfe (once: the real file), the long path's key
            #expect(!paths.contains(".hidden.md"))
            #expect(paths.contains(#"bad\xff.md"#))
            #expect(paths.contains(#"twin\xfe"#))
            #expect(first.invalidNames == [#"bad\xff.md"#])
            #expect(general.invalidNames == first.invalidNames)
            #expect(first.longPaths.count == 1)
            #expect(general.longPaths == first.longPaths)
            #expect(firstRun.planned == paths.count)
            #expect(generalRun.planned == paths.count)
            let stored = try await c.query("SELECT planned FROM \(unescaped: schema.runs) WHERE id = \(firstRun.id)")[0]
            #expect(try stored.decode(Int.self, 0) == paths.count)

            // A source with a document, or with a quarantined path only, is compared with what it has.
            try await c.execute("""
                INSERT INTO \(unescaped: schema.documents) (source_id, path, sha256, size, mtime, kind, run_id)
                VALUES ('general', 'a.md', '', 0, now(), 'text', \(generalRun.id))
                """)
            #expect(try await !planner.isFirstSync(sourceID: "general", on: c))
            try await c.execute("""
                INSERT INTO \(unescaped: schema.failures) (source_id, path, reason, message) VALUES ('first', 'x', 'r', 'm')
                """)
            #expect(try await !planner.isFirstSync(sourceID: "first", on: c))
        }
    }

    func bank(run: Int64, _ paths: [String], on c: PostgresConnection) async throws {
        try await c.copyFrom("COPY \(unescaped: schema.checkpoints) (run_id, path, outcome, worker) FROM STDIN") { writer in
            for path in paths { try await writer.writeRow(run, path, "imported", "test") }
        }
    }
}
