import FileFleet
import Foundation
import Testing
import TestSupport

/// The liveness probe answers from memory, at once, whatever Postgres does: a status page waiting
/// for Postgres must not hold it up, or an orchestrator restarts a healthy worker. In the network
/// suite: its labs are serialized (one lab per process at a time).
extension NetworkPartitionTests {
    struct Answer {
        var status: Int
        var seconds: Double
        var body: String
    }

    /// GET `path` from inside `node` (the worker's `--http` listens on the node's loopback).
    static func get(_ node: NetworkLab.Node, _ port: Int, _ path: String, timeout: Int = 20) async throws -> Answer {
        let output = try await runBlocking {
            try Command.run("/usr/sbin/ip", ["netns", "exec", node.namespace, "curl", "-s", "-m", String(timeout),
                                             "-w", "\n%{http_code} %{time_total}", "http://127.0.0.1:\(port)\(path)"])
        }
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        let last = lines.last?.split(separator: " ") ?? []
        return Answer(status: Int(last.first ?? "") ?? 0, seconds: Double(last.last ?? "") ?? .infinity,
                      body: lines.dropLast().joined(separator: "\n"))
    }

    @Test(.enabled(if: NetworkLab.isAvailable), .timeLimit(.minutes(3)))
    func healthzAnswersWithin100msWhileStatusPagesWaitForPostgres() async throws {
        try await Self.onLab(nodes: 1, files: 10) { lab, _, fleet in
            let node = lab.nodes[0]
            let port = 9311  // the node's own loopback: nothing else listens there
            _ = try fleet.start("worker", ["worker", "--http", "127.0.0.1:\(port)"], node: node)
            let up = await fleetEventually(timeout: .seconds(60)) { (try? await Self.get(node, port, "/healthz"))?.status == 200 }
            try #require(up, "the worker's /healthz never answered")
            let page = try await Self.get(node, port, "/")
            #expect(page.status == 200 && page.body.contains("<h2>Sources</h2>"), "\(page.body)")

            let faults: [(String, () async throws -> Void, () async throws -> Void)] = [
                ("Postgres's packets dropped", { try lab.cut(node) }, { try lab.restore(node) }),
                ("Postgres stopped", { try await fleet.postgres.stop() }, { try await fleet.postgres.start() }),
            ]
            for (what, fault, undo) in faults {
                try await fault()
                let directory = fleet.directory + "/pages-\(UUID().uuidString.prefix(6))"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                // Twenty status pages in flight, each waiting for Postgres.
                let pages = try (0..<20).map { i in
                    try Command.spawn(node.command(["curl", "-s", "-m", "30", "http://127.0.0.1:\(port)/"]),
                                      output: "\(directory)/\(i).html")
                }
                try await Task.sleep(for: .milliseconds(300))
                var slowest = 0.0
                for _ in 0..<10 {
                    let probe = try await Self.get(node, port, "/healthz")
                    #expect(probe.status == 200, "\(what): /healthz said \(probe.status) \(probe.body)")
                    slowest = max(slowest, probe.seconds)
                }
                #expect(slowest < 0.1, "\(what): /healthz took \(slowest) s behind the status pages")
                let started = ContinuousClock.now
                for pid in pages { _ = try await runBlocking { Command.wait(pid) } }
                // Each page gave up on Postgres within its read timeout and said so.
                #expect(ContinuousClock.now - started < .seconds(15), "\(what): the pages waited for Postgres")
                for i in 0..<20 {
                    let body = (try? String(contentsOfFile: "\(directory)/\(i).html", encoding: .utf8)) ?? ""
                    #expect(body.contains("Cannot read the status"), "\(what): page \(i): \(body.suffix(300))")
                }
                try await undo()
            }
        }
    }
}
