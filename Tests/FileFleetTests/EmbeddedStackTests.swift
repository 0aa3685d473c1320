import FileFleet
import Foundation
import Testing
import TestSupport

/// `filefleet sync DIR` with nothing configured (SPEC §8), run as a user would: a separate process
/// that starts its own PostgreSQL and broker in the state directory and stops them at the end.
@Suite struct EmbeddedStackTests {
    let tree: String
    let state: String

    init() throws {
        let base = "/tmp/" + TestEnvironment.uniqueName("embedded")
        tree = base + "/tree"
        state = base + "/state"
        for i in 0..<600 {
            let dir = "\(tree)/d\(i % 6)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try "---\ntitle: Note \(i)\n---\n# Heading \(i)\n\nbody \(i)\n".write(toFile: "\(dir)/n\(i).md", atomically: false, encoding: .utf8)
        }
    }

    func sync(killAfter: Duration? = nil) async throws -> (status: Int32, summary: SyncSummary?) {
        let output = state + "-\(UUID().uuidString.prefix(6)).out"
        let pid = try Command.spawn([CLI.path, "sync", tree, "--json", "--state-dir", state], output: output)
        if let killAfter {
            try await Task.sleep(for: killAfter)
            kill(pid, SIGKILL)
        }
        let status = try await runBlocking { Command.wait(pid) }
        let text = try String(contentsOfFile: output, encoding: .utf8)
        let last = text.split(separator: "\n").last.map(String.init) ?? ""
        return (status, try? JSONDecoder().decode(SyncSummary.self, from: Data(last.utf8)))
    }

    var stack: EmbeddedStack { EmbeddedStack(stateDirectory: state) }

    @Test func embeddedSyncImportsStopsItsServersAndRerunsAsANoOp() async throws {
        let first = try await sync()
        #expect(first.status == 0)
        #expect(first.summary?.status == .completed)
        #expect(first.summary?.imported == 600)
        #expect(stack.running == nil)  // nothing of the state dir is left running

        try "changed\n".write(toFile: "\(tree)/d0/n0.md", atomically: false, encoding: .utf8)
        try FileManager.default.removeItem(atPath: "\(tree)/d1/n1.md")
        try "new\n".write(toFile: "\(tree)/new.md", atomically: false, encoding: .utf8)
        let second = try await sync()
        #expect(second.summary?.planned == 3)
        #expect(second.summary?.imported == 2)
        #expect(second.summary?.deleted == 1)

        let third = try await sync()
        #expect(third.summary?.planned == 0)
        #expect(stack.running == nil)
    }

    @Test func embeddedSyncKilledMidRunResumesWithoutDuplicates() async throws {
        // Killed at several points of its life; the servers it leaves are adopted by the next run.
        for delay in [2000, 3000, 4000] {
            _ = try await sync(killAfter: .milliseconds(delay))
        }
        let final = try await sync()
        #expect(final.status == 0)
        #expect(final.summary?.status == .completed)
        let summary = try #require(final.summary)
        // Each path is checkpointed once per run: what this run did plus what it found banked
        // covers the plan exactly (or the plan was already finished by a killed attempt).
        if summary.planned > 0 {
            #expect(summary.resumed + summary.imported + summary.unchanged + summary.deleted == summary.planned)
        }
        #expect(stack.running == nil)
        let endpoints = try await runBlocking { try stack.up() }
        let count = try await runBlocking {
            try Command.run("/usr/bin/env", ["psql", endpoints.postgresURL, "-qAt", "-c",
                                             "SELECT count(*) FROM filefleet.documents"])
        }
        try await runBlocking { try stack.down() }
        #expect(count.trimmingCharacters(in: .whitespacesAndNewlines) == "600")
    }

    /// `eval "$(filefleet stack env)"`, then `sync DIR` (issue 12 point 4): the configured servers
    /// are the running stack, so the sync runs in-process workers instead of waiting for none.
    @Test func syncWithStackEnvRunsInProcessWorkers() async throws {
        let up = try await runBlocking {
            try Command.run(CLI.path, ["stack", "up", "--state-dir", self.state])
        }
        let exports = up.split(separator: "\n").last.map(String.init) ?? ""
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("FILEFLEET_") }
        // export A='x' B='y' C='z'
        for assignment in exports.dropFirst("export ".count).split(separator: " ") {
            let parts = assignment.split(separator: "=", maxSplits: 1)
            environment[String(parts[0])] = String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: "'"))
        }
        #expect(environment["FILEFLEET_POSTGRES_URL"] != nil && environment["FILEFLEET_KAFKA_BROKERS"] != nil, "\(exports)")
        #expect(environment["FILEFLEET_STATE_DIR"] == stack.stateDirectory, "\(exports)")
        // From another directory: the exports alone find the stack.
        let output = state + "-env.out"
        let pid = try Command.spawn(["/bin/sh", "-c", "cd / && exec \"$0\" sync \"$1\" --json --no-worker-timeout 5", CLI.path, tree],
                                    environment: environment, output: output)
        let status = try await runBlocking { Command.wait(pid) }
        let text = try String(contentsOfFile: output, encoding: .utf8)
        let summary = text.split(separator: "\n").last.flatMap { try? JSONDecoder().decode(SyncSummary.self, from: Data($0.utf8)) }
        #expect(status == 0, "\(text)")
        #expect(summary?.status == .completed && summary?.imported == 600, "\(text)")
        #expect(stack.running != nil)  // stack up's servers stay up after the sync
        try await runBlocking { try self.stack.down() }
    }
}
