import FileFleet
import FleetPostgres
import Foundation
import Testing
import TestSupport

/// Takeover when the holder is stalled inside a fenced transaction (SPEC §6.5): its share lock on
/// the lease row must not block the contender past TTL + grace.
@Suite struct FleetLeaseTests {
    @Test(.timeLimit(.minutes(1)))
    func fleetHolderStalledInAFencedTransactionDoesNotBlockTakeover() async throws {
        let environment = try await TestEnvironment.shared()
        let schema = Schema(try await environment.makeSchema().name)
        let pool = PostgresPool(url: environment.postgresURL, maxConnections: 1)
        try await schema.migrate(pool)
        await pool.close()
        let store = LeaseStore(schema: schema)
        let timing = LeaseTiming(heartbeat: .milliseconds(300), ttl: .seconds(1), grace: .seconds(1))
        let holder = try await PostgresConnection.connect(environment.postgresURL)
        let contender = try await PostgresConnection.connect(environment.postgresURL)

        let token = try await store.acquire("sync:stalled", holder: "frozen", timing: timing, on: holder)
        // The holder enters a fenced transaction and goes quiet in it (a SIGSTOP, a partition).
        let stalled = Task {
            try await store.fenced("sync:stalled", token: token, idleTimeout: timing.ttl, on: holder) { _ in
                try await Task.sleep(for: .seconds(10))
            }
        }
        try await Task.sleep(for: .milliseconds(2500))
        let start = ContinuousClock.now
        let taken = try await store.acquire("sync:stalled", holder: "successor", timing: timing, on: contender)
        let waited = seconds(since: start)
        print("fleet lease: takeover of a holder stalled in a fenced transaction waited \(String(format: "%.2f", waited)) s")
        #expect(taken == token + 1)
        #expect(waited < 4, "the stalled holder's transaction blocked the takeover for \(waited) s")
        stalled.cancel()
        #expect(await (try? stalled.value) == nil, "the stalled holder's transaction must not commit")
        await holder.close()
        await contender.close()
    }
}
