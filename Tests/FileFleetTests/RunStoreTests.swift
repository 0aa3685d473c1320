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

    func bank(run: Int64, _ paths: [String], on c: PostgresConnection) async throws {
        try await c.copyFrom("COPY \(unescaped: schema.checkpoints) (run_id, path, outcome, worker) FROM STDIN") { writer in
            for path in paths { try await writer.writeRow(run, path, "imported", "test") }
        }
    }
}
