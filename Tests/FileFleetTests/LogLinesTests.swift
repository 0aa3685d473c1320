@testable import FileFleet
import Foundation
import Testing
import TestSupport

/// Issue 15: log lines through swift-log. `--log-format json` writes one object a line with the
/// run's metadata carried; `--log-level` drops what is below it; a wrong word is a usage error.
@Suite struct LogLinesTests {
    @Test(.timeLimit(.minutes(2)))
    func jsonLinesCarryTheRunAndTheLevelDropsWhatIsBelowIt() async throws {
        let server = try await PostgresServer.start()
        defer { Task { try? await server.stop() } }
        let environment = try await TestEnvironment.shared()
        let tree = try ScratchTree("loglines")
        for i in 0..<5 { try tree.write("n\(i).md", "# note \(i)\n") }
        let servers = ["--postgres", server.url, "--kafka", environment.kafkaBrokers, "--topic", TestEnvironment.uniqueName("logtopic")]

        // Small enough to be imported by the sync itself: no worker needed.
        let json = try await SecurityTests.cli(["sync", tree.root, "--source-id", "logs"] + servers + ["--log-format", "json"])
        #expect(json.status == 0, "\(json.output)")
        let objects = json.output.split(separator: "\n").filter { $0.hasPrefix("{") }.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: String]
        }
        let lines = json.output.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(!objects.isEmpty && objects.count == lines.count, "lines that are not JSON objects of strings:\n\(json.output)")
        for object in objects {
            #expect(["time", "level", "component", "event"].allSatisfy { object[$0] != nil }, "\(object)")
        }
        let finished = try #require(objects.first { $0["event"] == "finished" }, "\(json.output)")
        // Set once on the run's logger, carried by every line of it.
        #expect(finished["run"] == "1" && finished["source"] == "logs" && finished["level"] == "info", "\(finished)")
        #expect(!json.output.contains("event=finished"), "a key=value line among the JSON ones:\n\(json.output)")

        // The default format, and a level above info: the run's info lines are gone, its summary is not.
        try tree.write("n5.md", "# note 5\n")
        let quiet = try await SecurityTests.cli(["sync", tree.root, "--source-id", "logs"] + servers + ["--log-level", "warning"])
        #expect(quiet.status == 0, "\(quiet.output)")
        #expect(!quiet.output.contains("event=planned") && !quiet.output.contains("event=finished"), "\(quiet.output)")
        #expect(quiet.output.contains("completed: logs run 2"), "\(quiet.output)")
        let loud = try await SecurityTests.cli(["sync", tree.root, "--source-id", "logs"] + servers)
        #expect(loud.output.contains(" component=coordinator event=finished ") && loud.output.contains(" run=3 "), "\(loud.output)")

        for (flag, word) in [("--log-level", "chatty"), ("--log-format", "xml")] {
            let wrong = try await SecurityTests.cli(["sync", tree.root, "--source-id", "logs"] + servers + [flag, word])
            #expect(wrong.status == 2 && wrong.output.contains("\(flag) must be"), "\(wrong.output)")
        }
    }
}
