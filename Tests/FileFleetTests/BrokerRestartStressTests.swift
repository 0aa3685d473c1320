@testable import FileFleet
import FleetPostgres
import Foundation
import Synchronization
import Testing
import TestSupport

/// Issue 12 point 8: restarts the broker 20 times (FLEET_BROKER_RESTART_STRESS=<restarts>; 0 skips) while
/// two workers consume, restarting crashed workers as an orchestrator would, and expects no
/// worker crash. A restarted Tansu answers Fetch v12 (topics by name) with CurrentLeader tags,
/// which made an unpatched librdkafka 2.14.2 dereference a NULL topic name
/// (rd_kafka_metadata_cache_find <- rd_kafka_metadata_update_op); scripts/setup patches it.
@Suite(.serialized) struct BrokerRestartStressTests {
    static let restarts = Int(ProcessInfo.processInfo.environment["FLEET_BROKER_RESTART_STRESS"] ?? "") ?? 20

    @Test(.enabled(if: restarts > 0), .timeLimit(.minutes(30)))
    func workersSurviveRepeatedBrokerRestarts() async throws {
        let broker = try await TansuBroker.start()
        var tree = try FleetTree.make(files: 4000)
        defer { tree.remove() }
        let fleet = try await Fleet(brokers: broker.brokers)
        do {
            try await BrokerRestartTests.slowBatches(fleet, seconds: 0.08)
            let supervised = try SupervisedWorkers(fleet, count: 2, arguments: BrokerRestartTests.workerArguments)
            defer { supervised.stop() }
            var sync = try fleet.sync("sync-0", tree, ["--stall-window", "5"])
            var syncs = 1
            for restart in 1...Self.restarts {
                if !sync.isRunning {
                    // Fresh work, so that the workers are consuming when the broker goes away.
                    mkdir(tree.root + "/s\(syncs)", 0o755)
                    for i in 0..<1500 { try tree.write("s\(syncs)/f-\(i).md", "# \(syncs) \(i)\n") }
                    sync = try fleet.sync("sync-\(syncs)", tree, ["--stall-window", "5"])
                    syncs += 1
                }
                let before = await FleetProcessTests.progress(fleet, tree.sourceID)?.done ?? 0
                _ = await fleetEventually(timeout: .seconds(60), every: .milliseconds(200)) {
                    let done = await FleetProcessTests.progress(fleet, tree.sourceID)?.done ?? 0
                    return done >= before + 150 || !sync.isRunning
                }
                try await broker.restart()
                print("broker restart stress: restart \(restart), \(supervised.crashed.withLock(\.count)) worker crashes so far")
            }
            let status = await sync.waitForExit(timeout: .seconds(300))
            supervised.stop()
            let dead = supervised.crashed.withLock { $0 }
            print("broker restart stress: \(Self.restarts) restarts, \(syncs) syncs, last exited \(status.map(String.init) ?? "-"), "
                  + "\(dead.count) worker crashes: \(dead.map { $0.exitStatus.map(String.init) ?? "-" })")
            #expect(dead.isEmpty, "\(dead.map(\.transcript).joined(separator: "\n"))")
            #expect(status == 0, "\(sync.transcript)")
            let serving = supervised.workers.withLock { $0 }
            _ = await terminateWorkers(serving)
        } catch {
            Issue.record("\(error)\n\(fleet.all.map(\.transcript).joined(separator: "\n"))")
        }
        await fleet.shutdown()
        try await broker.stop()
    }
}
