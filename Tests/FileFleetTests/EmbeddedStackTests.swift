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
}
