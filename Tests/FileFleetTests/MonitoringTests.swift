import FileFleet
import Foundation
import Testing
import TestSupport

/// The Grafana dashboard and the Prometheus alert rules in k8s/monitoring/ name only metrics that
/// a real run serves: a sync with in-process workers, scraped mid-run.
@Suite struct MonitoringTests {
    static let monitoring = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("k8s/monitoring").path

    /// Every `filefleet_…` name in `text`.
    static func metricNames(_ text: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: "filefleet_[a-z_]+")
        return Set(regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range, in: text).map { String(text[$0]) }
        })
    }

    @Test(.timeLimit(.minutes(3)))
    func everyMetricTheDashboardAndTheAlertsUseIsServedByARealRun() async throws {
        let rules = try String(contentsOfFile: Self.monitoring + "/prometheusrule.yaml", encoding: .utf8)
        let dashboardText = try String(contentsOfFile: Self.monitoring + "/grafana-dashboard.json", encoding: .utf8)
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(dashboardText.utf8)) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        #expect(panels.count >= 6 && panels.allSatisfy { ($0["targets"] as? [[String: Any]])?.isEmpty == false })
        for alert in ["FileFleetRunStalled", "FileFleetNoLiveWorkers", "FileFleetLeaseHeartbeatOld",
                      "FileFleetQuarantinedFilesRising", "FileFleetConsumerLagGrowing"] {
            #expect(rules.contains("alert: \(alert)"), "\(alert) is missing")
        }
        let used = Self.metricNames(rules).union(Self.metricNames(dashboardText))
        #expect(used.count >= 8, "\(used)")

        let tree = try FleetTree.make(files: 10_000)
        defer { tree.remove() }
        let fleet = try await Fleet()
        defer { Task { await fleet.shutdown() } }
        try await BrokerRestartTests.slowBatches(fleet, seconds: 0.5)  // a run long enough to be scraped
        let port = try Command.freeLoopbackPort()
        // Through the in-process workers (no direct import): their metrics are served too.
        let sync = try fleet.sync("sync", tree, ["--workers", "2", "--direct-max", "0", "--http", "127.0.0.1:\(port)"])
        var served = Set<String>()
        _ = await fleetEventually(timeout: .seconds(90), every: .milliseconds(500)) {
            let text = (try? await runBlocking {
                try Command.run("/usr/bin/env", ["curl", "-s", "-m", "5", "http://127.0.0.1:\(port)/metrics"])
            }) ?? ""
            served.formUnion(Self.metricNames(text))
            return used.isSubset(of: served) || !sync.isRunning
        }
        #expect(used.subtracting(served).isEmpty,
                "named by the dashboard or the alerts but not served: \(used.subtracting(served).sorted())\nserved: \(served.sorted())\n\(sync.transcript)")
        _ = await sync.waitForExit(timeout: .seconds(120))
    }
}
