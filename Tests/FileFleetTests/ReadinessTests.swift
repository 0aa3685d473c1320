import FileFleet
import Foundation
import Testing
import TestSupport

/// `/readyz` of a sync with in-process workers while one of them is paused for real: its batches
/// fail (a trigger refuses its checkpoints) while the other makes progress, so it steps aside.
@Suite(.serialized) struct ReadinessTests {
    static func readyz(_ port: Int) async -> (status: Int, body: String) {
        let output = (try? await runBlocking {
            try Command.run("/usr/bin/env", ["curl", "-s", "-m", "5", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)/readyz"])
        }) ?? "\n0"
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.removeLast()) ?? 0
        return (status, lines.joined(separator: "\n"))
    }

    @Test(.timeLimit(.minutes(4)))
    func readyzNamesAnInProcessWorkerWhileItIsPausedAndIsReadyAgainWhenItResumes() async throws {
        let tree = try FleetTree.make(files: 20_000)
        defer { tree.remove() }
        let fleet = try await Fleet()
        defer { Task { await fleet.shutdown() } }
        try await BrokerRestartTests.slowBatches(fleet, seconds: 1)
        try await fleet.query { c in
            _ = try await c.executeScript("""
                CREATE TABLE filefleet.poisoned_workers (id text PRIMARY KEY);
                CREATE FUNCTION filefleet.refuse_poisoned() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                  IF EXISTS (SELECT 1 FROM filefleet.poisoned_workers WHERE id = NEW.worker) THEN
                    RAISE EXCEPTION 'this worker is poisoned by the test' USING ERRCODE = 'XX000';
                  END IF;
                  RETURN NEW;
                END $$;
                CREATE TRIGGER refuse_poisoned BEFORE INSERT ON filefleet.checkpoints
                  FOR EACH ROW EXECUTE FUNCTION filefleet.refuse_poisoned();
                """)
        }
        let port = try Command.freeLoopbackPort()
        // Through the in-process workers (no direct import), in batches of a worker process's
        // size: at 1 s each the run lasts long enough for the pause.
        let sync = try fleet.sync("sync", tree, ["--workers", "2", "--direct-max", "0", "--batch-size", "500",
                                                 "--http", "127.0.0.1:\(port)"])
        do {
            // Both in-process workers registered and taking work.
            var ids: [String] = []
            let started = await fleetEventually(timeout: .seconds(60), every: .milliseconds(200)) {
                ids = (try? await fleet.query { c in
                    try await c.query("SELECT id FROM filefleet.workers WHERE imported > 0 ORDER BY id").map { try $0.decode(String.self, 0) }
                }) ?? []
                return ids.count == 2
            }
            try #require(started, "the two in-process workers did not both import\n\(sync.transcript)")
            #expect(await Self.readyz(port).status == 200)
            let victim = ids[0]
            _ = try await fleet.query { c in try await c.execute("INSERT INTO filefleet.poisoned_workers VALUES (\(victim))") }

            var body = ""
            let paused = await fleetEventually(timeout: .seconds(60), every: .milliseconds(200)) {
                let answer = await Self.readyz(port)
                body = answer.body
                return answer.status == 503 && answer.body.contains("worker \(victim): not ready: paused")
            }
            #expect(paused, "readyz did not name the paused worker: \(body)\n\(sync.transcript)")
            #expect(body.contains("worker \(ids[1]): ready"), "\(body)")

            _ = try await fleet.query { c in try await c.execute("DELETE FROM filefleet.poisoned_workers") }
            let resumed = await fleetEventually(timeout: .seconds(60), every: .milliseconds(200)) {
                let answer = await Self.readyz(port)
                body = answer.body
                return answer.status == 200 || !sync.isRunning
            }
            #expect(resumed && sync.isRunning, "readyz did not become ready again while the run went on: \(body)\n\(sync.transcript)")
            #expect(sync.stderr.contains("event=resumed"), "\(sync.transcript)")
            #expect(await sync.waitForExit(timeout: .seconds(180)) == 0, "\(sync.transcript)")
        } catch {
            Issue.record("\(error)\n\(sync.transcript)")
        }
    }
}
