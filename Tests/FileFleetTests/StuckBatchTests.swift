@testable import FileFleet
import FleetPostgres
import Foundation
import Synchronization
import Testing
import TestSupport

/// SPEC §6.12 "nothing waits without end" and issue 12's "wedged but alive" and "a shared outage
/// is not a sick worker": real `filefleet` processes on a private Postgres, with a row lock held
/// by the test, a mount whose reads hang, and the database stopped mid-run.
@Suite(.serialized) struct StuckBatchTests {
    /// A row lock the test holds on a document the batch must update: the batch is rolled back at
    /// its deadline (its statement is not left waiting), the worker says which paths were in
    /// flight, retries, and the run completes once the lock is gone.
    @Test(.timeLimit(.minutes(3)))
    func aBatchWaitingOnALockIsRolledBackAtItsDeadline() async throws {
        var tree = try FleetTree.make(files: 200)
        defer { tree.remove() }
        let fleet = try await Fleet()
        do {
            let worker = try fleet.start("worker", ["worker", "--batch-size", "50", "--concurrency", "2", "--batch-timeout", "3"])
            let first = try fleet.sync("first", tree)
            #expect(await first.waitForExit(timeout: .seconds(60)) == 0, "\(first.transcript)")

            let locked = "d0/note-7.md"
            try tree.write(locked, "# edited while locked\n")
            try tree.write("d0/note-8.md", "# edited too\n")
            let holder = try await PostgresConnection.connect(fleet.postgres.url)
            try await holder.execute("BEGIN")
            try await holder.execute("SELECT 1 FROM filefleet.documents WHERE path = \(locked) FOR UPDATE")
            let held = ContinuousClock.now
            let second = try fleet.sync("second", tree)

            let timedOut = await fleetEventually(timeout: .seconds(30)) { worker.stderr.contains(" event=batch_timeout ") }
            #expect(timedOut, "\(worker.transcript)")
            let line = worker.stderr.split(separator: "\n").first { $0.contains(" event=batch_timeout ") }.map(String.init) ?? ""
            #expect(line.contains(locked) && line.contains("--batch-timeout 3 s"), "\(line)")
            // While the lock is held, no statement of the fleet waits on it for longer than the
            // deadline (and a little slack): each attempt is cancelled on the server too.
            var longestWait = 0.0
            for _ in 0..<12 {
                longestWait = max(longestWait, try await fleet.query { c in
                    try await c.query("""
                        SELECT coalesce(max(extract(epoch FROM now() - query_start)), 0)::float8 FROM pg_stat_activity
                         WHERE wait_event_type = 'Lock' AND application_name = 'filefleet'
                        """)[0].decode(Double.self, 0)
                })
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(longestWait < 5, "a batch waited \(longestWait) s on the lock with a 3 s deadline")
            #expect(second.isRunning, "the run ended while a file it must write was locked\n\(second.transcript)")

            try await holder.execute("COMMIT")
            await holder.close()
            let released = ContinuousClock.now
            #expect(await second.waitForExit(timeout: .seconds(60)) == 0, "\(second.transcript)\n\(worker.transcript)")
            let held_s = (released - held).seconds, after = seconds(since: released)
            print("stuck batch: lock held \(String(format: "%.1f", held_s)) s; longest wait on it \(String(format: "%.1f", longestWait)) s; "
                  + "run done \(String(format: "%.1f", after)) s after the release; "
                  + "\(worker.stderr.components(separatedBy: " event=batch_timeout ").count - 1) batch timeouts")
            #expect(second.summary?.imported == 2, "\(second.stdout)")
            try await FleetProcessTests.expectDocumentsEqualTree(fleet, tree)
            #expect(await terminateWorkers([worker]) == [0], "\(worker.transcript)")
        } catch {
            Issue.record("\(error)\n\(fleet.all.map(\.transcript).joined(separator: "\n"))")
        }
        await fleet.shutdown()
    }

    /// A read that never returns (a FUSE mount that stopped answering, as a dead network share
    /// does): the file fails `read_timeout` at half the batch deadline and the rest of the batch
    /// commits; the worker's `/healthz` says it is stuck once the read outlives twice the deadline,
    /// and is healthy again when the read returns; the next sync imports the file.
    @Test(.timeLimit(.minutes(3)))
    func aReadThatHangsFailsItsFileAndTheRunCompletes() async throws {
        var tree = try FleetTree.make(files: 100)
        defer { tree.remove() }
        let mount = tree.root + "/mnt"
        let release = tree.root + ".release"
        defer { unlink(release) }
        mkdir(mount, 0o755)
        let fs = try HungMount(mountpoint: mount, release: release)
        defer { fs.unmount() }
        let fleet = try await Fleet()
        do {
            let port = try Command.freeLoopbackPort()
            let worker = try fleet.start("worker", ["worker", "--batch-size", "50", "--concurrency", "2", "--batch-timeout", "4",
                                                    "--http", "127.0.0.1:\(port)"])
            let started = ContinuousClock.now
            let sync = try fleet.sync("sync", tree)
            #expect(await sync.waitForExit(timeout: .seconds(60)) == 3, "\(sync.transcript)\n\(worker.transcript)")
            let took = seconds(since: started)
            #expect(sync.summary?.imported == 101 && sync.summary?.failed == 1, "\(sync.stdout)")
            let reason = try await fleet.query { c in
                try await c.query("SELECT reason FROM filefleet.failures WHERE path = 'mnt/hang.md'").first?.decode(String.self, 0)
            }
            #expect(reason == "read_timeout")
            #expect(worker.stderr.contains(" event=read_timeout ") && worker.stderr.contains("mnt/hang.md"), "\(worker.transcript)")

            // The abandoned read still hangs: past 2 × 4 s since it began, the worker is not alive.
            let stuck = await fleetEventually(timeout: .seconds(20)) { (try? await Self.get(port, "/healthz").status) == 503 }
            let health = try await Self.get(port, "/healthz")
            #expect(stuck && health.body.contains("a read of mnt/hang.md"), "\(health)")
            let stuckAfter = seconds(since: started)
            _ = FileManager.default.createFile(atPath: release, contents: nil)
            let healthy = await fleetEventually(timeout: .seconds(10)) { (try? await Self.get(port, "/healthz").status) == 200 }
            #expect(healthy)
            print("hung read: sync exited 3 after \(String(format: "%.1f", took)) s; /healthz 503 after \(String(format: "%.1f", stuckAfter)) s")

            tree.expect("mnt/ok.md", bytes: Array("# Fine\n".utf8))
            tree.expect("mnt/hang.md", bytes: Array("# Hung until released\n".utf8))
            let next = try fleet.sync("next", tree)
            #expect(await next.waitForExit(timeout: .seconds(60)) == 0, "\(next.transcript)")
            try await FleetProcessTests.expectDocumentsEqualTree(fleet, tree)
            #expect(await terminateWorkers([worker]) == [0], "\(worker.transcript)")
        } catch {
            Issue.record("\(error)\n\(fleet.all.map(\.transcript).joined(separator: "\n"))")
        }
        await fleet.shutdown()
    }

    /// The database down for every worker at once, 20 s, three times in one run: the workers wait
    /// and retry in place instead of all leaving the group (issue 12 point 9), and the run
    /// converges each time without a person stepping in.
    @Test(.timeLimit(.minutes(8)))
    func postgresStoppedThreeTimesMidRunTheRunConverges() async throws {
        let tree = try FleetTree.make(files: 4000)
        defer { tree.remove() }
        let fleet = try await Fleet()
        do {
            try await BrokerRestartTests.slowBatches(fleet, seconds: 0.2)
            let workers = try (0..<2).map {
                try fleet.start("worker-\($0)", ["worker", "--batch-size", "25", "--concurrency", "1"])
            }
            let start = ContinuousClock.now
            let sync = try fleet.sync("sync", tree, ["--lease-ttl", "90", "--stall-window", "10"])
            var outages: [Int] = []
            var restarted: ContinuousClock.Instant?
            for fraction in [0.1, 0.4, 0.7] {
                // Three outages, each after the run made progress since the last one, and after
                // the server was up for longer than the retries' longest delay (5 s): back to
                // back, or with a window a retry can sleep through (one CI run had 3 s), they
                // would be one outage of 40 s to the coordinator, past its retry budget (60 s
                // from its first failed attempt, SPEC §4: exit 4), which is not what this test is about.
                let done = await BrokerRestartTests.waitForProgress(fleet, tree, sync,
                                                                    atLeast: max(Int(4000 * fraction), (outages.last ?? 0) + 300))
                if let restarted, ContinuousClock.now - restarted < .seconds(6) {
                    try await Task.sleep(until: restarted + .seconds(6))
                }
                try #require(sync.isRunning, "the run ended before the outage at \(done): make the tree bigger\n\(sync.transcript)")
                try await fleet.postgres.stop()
                try await Task.sleep(for: .seconds(20))
                try await fleet.postgres.start()
                restarted = .now
                outages.append(done)
            }
            let status = await sync.waitForExit(timeout: .seconds(240))
            let elapsed = seconds(since: start)
            let transcripts = "\(sync.transcript)\n\(workers.map(\.transcript).joined(separator: "\n"))"
            #expect(status == 0, "\(transcripts)")
            try await FleetProcessTests.expectDocumentsEqualTree(fleet, tree)
            #expect(workers.allSatisfy { $0.isRunning }, "\(transcripts)")
            let pauses = workers.map { $0.stderr.components(separatedBy: " event=paused ").count - 1 }
            #expect(pauses == [0, 0], "a worker left the group during a shared outage: \(pauses)\n\(transcripts)")
            let writes = try await FleetProcessTests.documentWrites(fleet)
            print("postgres outages of 20 s at \(outages) done: sync exited \(status.map(String.init) ?? "-") after "
                  + "\(String(format: "%.1f", elapsed)) s, \(writes - 4000) document writes beyond one per file, pauses \(pauses)")
            #expect(await terminateWorkers(workers) == [0, 0], "\(transcripts)")
        } catch {
            Issue.record("\(error)\n\(fleet.all.map(\.transcript).joined(separator: "\n"))")
        }
        await fleet.shutdown()
    }

    static func get(_ port: Int, _ path: String) async throws -> (status: Int, body: String) {
        let output = try await runBlocking {
            try Command.run("/usr/bin/env", ["curl", "-s", "-m", "5", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
        }
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.removeLast()) ?? 0
        return (status, lines.joined(separator: "\n"))
    }
}

/// `Tests/Tools/hangfs.py` mounted at `mountpoint`: `ok.md` reads at once, `hang.md` only once
/// `release` exists.
final class HungMount: Sendable {
    let mountpoint: String
    let process: Process

    init(mountpoint: String, release: String) throws {
        self.mountpoint = mountpoint
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tools/hangfs.py").path
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script, mountpoint, release]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: mountpoint + "/ok.md") {
            guard process.isRunning, ContinuousClock.now < deadline else {
                throw POSIXError(.EIO, userInfo: [NSLocalizedDescriptionKey: "hangfs did not mount (python3-fuse, /dev/fuse)"])
            }
            usleep(50_000)
        }
    }

    func unmount() {
        _ = try? Command.run("/bin/umount", ["-l", mountpoint])
        process.terminate()
        process.waitUntilExit()
    }
}
