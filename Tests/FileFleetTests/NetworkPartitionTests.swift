@testable import FileFleet
import FleetPostgres
import Foundation
import Testing
import TestSupport

/// Workers on nodes of a `NetworkLab` (network namespaces on a bridge), Postgres and the broker on
/// the host's side of the bridge: what a link that drops does to the fleet (issue 12 point 6).
@Suite(.serialized) struct NetworkPartitionTests {
    /// A worker cut off in the middle of a batch holds row locks in a transaction it can never
    /// finish. The server drops its sessions within about 30 s (keepalives, user timeout,
    /// `idle_in_transaction_session_timeout`), the locks go with them, and the survivor, which
    /// gets the cut worker's partitions and their uncommitted paths, finishes the run.
    @Test(.enabled(if: NetworkLab.isAvailable), .timeLimit(.minutes(5)))
    func aWorkerCutOffMidBatchDoesNotBlockTheSurvivor() async throws {
        try await Self.onLab(nodes: 2) { lab, tree, fleet in
            let (cutNode, otherNode) = (lab.nodes[0], lab.nodes[1])
            // Each batch holds its transaction open 0.3 s longer, so that a cut lands inside one.
            try await BrokerRestartTests.slowBatches(fleet, seconds: 0.3)
            let arguments = ["worker", "--batch-size", "25", "--concurrency", "1", "--batch-timeout", "20"]
            let cut = try fleet.start("cut", arguments, node: cutNode)
            let survivor = try fleet.start("survivor", arguments, node: otherNode)
            let start = ContinuousClock.now
            let sync = try fleet.sync("sync", tree, ["--stall-window", "10"])
            let done = await BrokerRestartTests.waitForProgress(fleet, tree, sync, atLeast: 450)
            try #require(sync.isRunning, "the run ended before the cut at \(done)\n\(sync.transcript)")

            // Cut while the node's worker is inside a transaction that has written rows.
            let inTransaction = await fleetEventually(timeout: .seconds(20), every: .milliseconds(20)) {
                ((try? await Self.sessions(fleet, from: cutNode)) ?? (0, 0)).inTransaction > 0
            }
            try lab.cut(cutNode)
            let cutAt = ContinuousClock.now
            let cutAfter = seconds(since: start)
            try #require(inTransaction, "the cut worker never held a transaction open\n\(cut.transcript)")
            let doneAtCut = await FleetProcessTests.progress(fleet, tree.sourceID)?.done ?? 0

            let released = await fleetEventually(timeout: .seconds(90), every: .milliseconds(250)) {
                ((try? await Self.sessions(fleet, from: cutNode)) ?? (1, 1)).all == 0
            }
            let releasedAfter = seconds(since: cutAt)
            let status = await sync.waitForExit(timeout: .seconds(180))
            let finishedAfter = seconds(since: cutAt)
            #expect(released, "the cut worker's sessions outlived it")
            #expect(releasedAfter < 45, "the cut worker's sessions lasted \(releasedAfter) s")
            #expect(status == 0, "\(sync.transcript)\n\(survivor.transcript)")
            try await FleetProcessTests.expectDocumentsEqualTree(fleet, tree)
            #expect(finishedAfter < 120, "the survivor took \(finishedAfter) s after the cut")
            let writes = try await FleetProcessTests.documentWrites(fleet)
            print("network cut: worker cut mid-batch at \(doneAtCut)/3000 done, \(String(format: "%.1f", cutAfter)) s into the run; "
                  + "its sessions gone \(String(format: "%.1f", releasedAfter)) s later; run completed "
                  + "\(String(format: "%.1f", finishedAfter)) s after the cut; \(writes - 3000) document writes beyond one per file")
            try lab.restore(cutNode)
        }
    }

    /// The server's sessions from `node`: all, and those inside a transaction.
    /// A lab of `nodes` nodes with the broker on its bridge, a tree of `files` files and a fleet
    /// for them: `body`'s error is recorded with every process's transcript, and all is stopped after.
    static func onLab(nodes: Int, files: Int = 3000,
                      _ body: (NetworkLab, FleetTree, Fleet) async throws -> Void) async throws {
        let lab = try NetworkLab(nodes: nodes)
        defer { lab.remove() }
        let broker = try await TansuBroker.start(lab: lab)
        let tree = try FleetTree.make(files: files)
        defer { tree.remove() }
        let fleet = try await Fleet(brokers: broker.brokers, lab: lab)
        do {
            try await body(lab, tree, fleet)
        } catch {
            Issue.record("\(error)\n\(fleet.all.map(\.transcript).joined(separator: "\n"))")
        }
        await fleet.shutdown()
        try await broker.stop()
    }

    static func sessions(_ fleet: Fleet, from node: NetworkLab.Node) async throws -> (all: Int, inTransaction: Int) {
        try await PostgresConnection.withConnection(fleet.postgres.url) { c in
            let row = try await c.query("""
                SELECT count(*), count(*) FILTER (WHERE xact_start IS NOT NULL AND state <> 'idle')
                  FROM pg_stat_activity WHERE client_addr = \(node.address)::inet
                """)[0]
            return (try row.decode(Int.self, 0), try row.decode(Int.self, 1))
        }
    }
}
