@testable import FileFleet
import FleetPostgres
import Foundation
import Testing
import TestSupport

/// The fleet as a user runs it (issue 6, "Must show"): `filefleet sync` and `filefleet worker`
/// as separate processes against a private Postgres and the shared broker. Serialized: each test
/// runs several processes on a small machine.
@Suite(.serialized) struct FleetProcessTests {
    static let schema = Schema()  // the CLI always uses `filefleet`

    /// The newest run of `source`: id, planned, checkpointed; nil before there is one.
    static func progress(_ fleet: Fleet, _ source: String) async -> (run: Int64, planned: Int, done: Int)? {
        try? await fleet.query { c in
            try await c.query("""
                SELECT r.id, r.planned, (SELECT count(*) FROM \(unescaped: schema.checkpoints) k WHERE k.run_id = r.id)
                  FROM \(unescaped: schema.runs) r WHERE r.source_id = \(source) ORDER BY r.id DESC LIMIT 1
                """).first.map { (try $0.decode(Int64.self, 0), try $0.decode(Int.self, 1), try $0.decode(Int.self, 2)) }
        } ?? nil
    }

    static func expectDocumentsEqualTree(_ fleet: Fleet, _ tree: FleetTree, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let stored = try await fleet.query { c in try await FleetDB.documents(schema, source: tree.sourceID, on: c) }
        #expect(stored == tree.expected, "\(difference(stored, tree.expected))", sourceLocation: sourceLocation)
    }

    static func checkpointStats(_ fleet: Fleet, run: Int64) async throws -> (checkpoints: Int, planned: Int, unplanned: Int) {
        try await fleet.query { c in
            let checkpoints = try await c.query("SELECT count(*) FROM \(unescaped: schema.checkpoints) WHERE run_id = \(run)")[0].decode(Int.self, 0)
            let planned = try await c.query("SELECT count(*) FROM \(unescaped: schema.plannedPaths) WHERE run_id = \(run)")[0].decode(Int.self, 0)
            let unplanned = try await c.query("""
                SELECT count(*) FROM \(unescaped: schema.checkpoints) k WHERE k.run_id = \(run)
                   AND NOT EXISTS (SELECT 1 FROM \(unescaped: schema.plannedPaths) p WHERE p.run_id = k.run_id AND p.path = k.path)
                """)[0].decode(Int.self, 0)
            return (checkpoints, planned, unplanned)
        }
    }

    /// Rows written into `documents` (inserted, also by rolled-back transactions, and updated):
    /// beyond the files, this is work done twice. Waits for the servers' statistics to settle.
    static func documentWrites(_ fleet: Fleet) async throws -> Int {
        var last = -1
        for _ in 0..<20 {
            let n = try await fleet.query { c in
                try await c.query("""
                    SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0)::bigint FROM pg_stat_user_tables
                     WHERE schemaname = 'filefleet' AND relname = 'documents'
                    """)[0].decode(Int.self, 0)
            }
            if n == last { return n }
            last = n
            try await Task.sleep(for: .milliseconds(700))
        }
        return last
    }

    /// `event=refused` lines so far (one per refused message).
    static func refusalLines(_ worker: FleetProcess) -> Int {
        worker.stderr.components(separatedBy: " event=refused ").count - 1
    }

    /// The refusals a stopped worker counted.
    static func refusedCount(_ worker: FleetProcess) -> Int {
        // `… event=stopped … refused=N …`
        guard let line = worker.stderr.split(separator: "\n").last(where: { $0.contains(" event=stopped ") }),
              let field = line.split(separator: " ").first(where: { $0.hasPrefix("refused=") }) else { return 0 }
        return Int(field.dropFirst("refused=".count).trimmingCharacters(in: .punctuationCharacters)) ?? 0
    }

    // MARK: -

    /// Issue 13: with in-process workers and no other worker live, a sync imports a large run
    /// itself (the Kafka round trip buys one machine nothing); once a worker of another process is
    /// live, it hands the rest over to Kafka, where that worker takes a share.
    @Test(.timeLimit(.minutes(4)))
    func aSyncImportsARunItselfUntilAWorkerOfAnotherProcessIsLive() async throws {
        let fleet = try await Fleet()
        defer { Task { await fleet.shutdown() } }
        let alone = try FleetTree.make(files: 3000)
        defer { alone.remove() }
        let first = try fleet.start("alone", ["sync", alone.root, "--json", "--workers", "2", "--source-id", "alone"])
        #expect(await first.waitForExit(timeout: .seconds(120)) == 0, "\(first.transcript)")
        #expect(!first.stderr.contains("event=assigned"), "\(first.transcript)")
        #expect(!first.stderr.contains("event=published"), "\(first.transcript)")
        @Sendable func writers(_ source: String) async throws -> [String: Int] {
            try await fleet.query { c in
                var counts: [String: Int] = [:]
                for row in try await c.query("""
                    SELECT k.worker, count(*) FROM filefleet.checkpoints k JOIN filefleet.runs r ON r.id = k.run_id
                     WHERE r.source_id = \(source) GROUP BY k.worker
                    """) { counts[try row.decode(String.self, 0)] = try row.decode(Int.self, 1) }
                return counts
            }
        }
        let alonesWriters = try await writers("alone")
        #expect(alonesWriters.count == 1 && alonesWriters.keys.allSatisfy { $0.hasPrefix("sync:") }, "\(alonesWriters)")
        #expect(alonesWriters.values.reduce(0, +) == 3000)

        // A worker process is live, and the run long enough (slow batches) to be worth sharing.
        try await BrokerRestartTests.slowBatches(fleet, seconds: 0.5)
        let worker = try fleet.worker("worker")
        let live = await fleetEventually(timeout: .seconds(60), every: .milliseconds(200)) {
            (try? await fleet.query { c in
                try await c.query("SELECT count(*) FROM filefleet.workers WHERE state = 'running'")[0].decode(Int.self, 0)
            }) ?? 0 > 0
        }
        try #require(live, "\(worker.transcript)")
        let shared = try FleetTree.make(files: 6000)
        defer { shared.remove() }
        let second = try fleet.start("shared", ["sync", shared.root, "--json", "--workers", "1", "--batch-size", "200",
                                                "--source-id", "shared"])
        #expect(await second.waitForExit(timeout: .seconds(180)) == 0, "\(second.transcript)")
        #expect(second.stderr.contains("event=published"), "\(second.transcript)")
        let sharedWriters = try await writers("shared")
        let byWorkerProcess = sharedWriters.filter { $0.key.contains(":\(worker.pid):") }.values.reduce(0, +)
        #expect(byWorkerProcess > 0, "the worker process took no share: \(sharedWriters)\n\(second.transcript)")
        #expect(sharedWriters.values.reduce(0, +) == 6000, "\(sharedWriters)")
        #expect(await terminateWorkers([worker]) == [0], "\(worker.transcript)")
    }

    @Test(.timeLimit(.minutes(4)))
    func fleetConvergesWhenAWorkerIsKilledAndGarbageIsPublished() async throws {
        let started = ContinuousClock.now
        let tree = try FleetTree.make(files: 20_000)
        defer { tree.remove() }
        let fleet = try await Fleet()
        let workers = try (0..<3).map { try fleet.worker("worker\($0)") }
        // The workers come up before any coordinator: they must not wait minutes for a topic
        // that did not exist when they subscribed.
        let registered = await fleetEventually(timeout: .seconds(60)) {
            let n = try? await fleet.query { c in try await c.query("SELECT count(*) FROM \(unescaped: Self.schema.workers)")[0].decode(Int.self, 0) }
            return n == workers.count
        }
        let sync = try fleet.sync("sync", tree)
        do {
            try #require(registered, "the workers did not register")
            // Mid-run: a worker dies and garbage lands on the topic.
            let midRun = await fleetEventually(timeout: .seconds(120)) {
                guard let p = await Self.progress(fleet, tree.sourceID) else { return false }
                return p.done >= 1 || !sync.isRunning
            }
            try #require(midRun && sync.isRunning, "the run was not caught mid-way\n\(sync.transcript)")
            let p = try #require(await Self.progress(fleet, tree.sourceID))
            workers[0].killAndReap()
            let forged: [[UInt8]?] = [
                Array("not json at all".utf8), nil, [0xff, 0xfe, 0x00, 0x01],
                Array(#"{"run":999999,"source":"\#(tree.sourceID)","path":"d0/note-0.md"}"#.utf8),
                Array(#"{"run":\#(p.run),"source":"someone-else","path":"d0/note-1.md"}"#.utf8),
                Array(#"{"run":\#(p.run),"source":"\#(tree.sourceID)","path":"../../etc/passwd"}"#.utf8),
                // Paths the run never planned, signed with a key that is not the run's, or with made-up
                // hex: looked up in the plan, refused, and never checkpointed (`unplanned` below).
                PathMessage(run: p.run, source: tree.sourceID, path: "d0/unplanned-1.md")
                    .signed(with: Array(repeating: 7, count: 32)).encoded(),
                PathMessage(run: p.run, source: tree.sourceID, path: "d0/unplanned-2.md",
                            signature: "0123456789abcdef0123456789abcdef").encoded(),
            ]
            try await fleet.publish(forged)
            print("fleet kill+garbage: killed worker0 at \(p.done)/\(p.planned), \(String(format: "%.1f", seconds(since: started))) s in")

            let status = await sync.waitForExit(timeout: .seconds(150))
            #expect(status == 0, "\(sync.transcript)")
            let summary = try #require(sync.summary, "\(sync.transcript)")
            #expect(summary.status == .completed)
            #expect(summary.planned == 20_000)
            #expect(summary.imported == 20_000)
            #expect(summary.failed == 0 && summary.deleted == 0)
            #expect(summary.run_id == p.run)
            print("fleet kill+garbage: sync \(String(format: "%.1f", summary.elapsed_seconds)) s, " +
                  "\(Int(Double(summary.imported) / summary.elapsed_seconds)) files/s")

            try await Self.expectDocumentsEqualTree(fleet, tree)
            let stats = try await Self.checkpointStats(fleet, run: p.run)
            #expect(stats.checkpoints == 20_000 && stats.planned == 20_000 && stats.unplanned == 0, "\(stats)")

            // The survivors kept running through the kill and the garbage, and drain cleanly.
            #expect(workers[1].isRunning && workers[2].isRunning, "\(workers[1].transcript)\n\(workers[2].transcript)")
            // The garbage sits behind the run's last messages: wait until the survivors have refused it.
            _ = await fleetEventually(timeout: .seconds(60)) {
                workers.dropFirst().map(Self.refusalLines).reduce(0, +) >= forged.count
            }
            let survivors = Array(workers.dropFirst())
            #expect(await terminateWorkers(survivors) == [0, 0], "\(survivors.map(\.transcript).joined(separator: "\n"))")
            let refused = workers.dropFirst().map(Self.refusedCount).reduce(0, +)
            #expect(refused >= forged.count, "refused \(refused)\n\(workers[1].stderr.suffix(3000))")
            let writes = try await Self.documentWrites(fleet)
            print("fleet kill+garbage: \(writes) document writes for 20000 files, refused \(refused); total \(String(format: "%.1f", seconds(since: started))) s")
            #expect(writes <= 20_000 + 2 * 200, "document writes \(writes): more than the batch in flight was redone")
        } catch {
            Issue.record("\(error)\n\(fleet.all.map(\.transcript).joined(separator: "\n"))")
        }
        await fleet.shutdown()
    }

    /// A dead broker: a worker that starts while it is down waits for it and for the topic
    /// (whoever creates it), then imports. It joins the group only once the topic exists: a
    /// group that formed without its topic once sat idle with work waiting.
    @Test(.timeLimit(.minutes(3)))
    func fleetWorkerStartedWhileTheBrokerIsDownImportsOnceItIsUp() async throws {
        let broker = try await TansuBroker.start()
        try await broker.stop()
        let tree = try FleetTree.make(files: 300)
        defer { tree.remove() }
        let fleet = try await Fleet(brokers: broker.brokers)
        do {
            let worker = try fleet.worker("worker")
            let waiting = await fleetEventually(timeout: .seconds(60)) { worker.stderr.contains("event=waiting_for_topic") }
            try #require(waiting && worker.isRunning, "\(worker.transcript)")
            try await broker.restart()

            let sync = try fleet.sync("sync", tree)
            let status = await sync.waitForExit(timeout: .seconds(90))
            #expect(status == 0, "\(sync.transcript)\n\(worker.transcript)")
            let summary = try #require(sync.summary, "\(sync.transcript)")
            #expect(summary.status == .completed && summary.imported == 300)
            try await Self.expectDocumentsEqualTree(fleet, tree)
            #expect(worker.stderr.contains("event=assigned"), "\(worker.transcript)")

            #expect(await terminateWorkers([worker]) == [0], "\(worker.transcript)")
        } catch {
            Issue.record("\(error)\n\(fleet.all.map(\.transcript).joined(separator: "\n"))")
        }
        await fleet.shutdown()
        try await broker.stop()
    }

    /// A configuration error is not a dead broker: the worker says what is wrong and exits, at once.
    @Test(.timeLimit(.minutes(2)))
    func fleetWorkerWithABadKafkaOptionExitsAtOnce() async throws {
        let fleet = try await Fleet()
        let worker = try fleet.start("worker", ["worker", "--kafka-option", "no.such.property=1"])
        let status = await worker.waitForExit(timeout: .seconds(30))
        #expect(status != nil && status != 0, "\(worker.transcript)")
        #expect(worker.stderr.contains("no.such.property"), "\(worker.transcript)")
        #expect(!worker.stderr.contains("waiting_for_topic"), "\(worker.transcript)")
        await fleet.shutdown()
    }

    /// SPEC §6.12: a sync with no worker anywhere says so at once, exits 5 naming the fix, and
    /// leaves its run to be resumed; once a worker runs, the next sync finishes it.
    @Test(.timeLimit(.minutes(2)))
    func fleetSyncWithNoWorkerAnywhereSaysSoAndExits5() async throws {
        let tree = try FleetTree.make(files: 300)
        defer { tree.remove() }
        let fleet = try await Fleet()
        do {
            let start = ContinuousClock.now
            let lonely = try fleet.sync("lonely", tree, ["--no-worker-timeout", "4"])
            let said = await fleetEventually(timeout: .seconds(20)) { lonely.stderr.contains(" event=no_workers ") }
            let saidAfter = seconds(since: start)
            #expect(said, "\(lonely.transcript)")
            #expect(lonely.stderr.contains("start `filefleet worker`"), "\(lonely.transcript)")
            let status = await lonely.waitForExit(timeout: .seconds(40))
            let exitedAfter = seconds(since: start)
            print("fleet no workers: said so after \(String(format: "%.1f", saidAfter)) s, exited after \(String(format: "%.1f", exitedAfter)) s")
            #expect(status == 5, "\(lonely.transcript)")
            let object = try #require(lonely.summaryObject, "\(lonely.transcript)")
            #expect(object["status"] as? String == "aborted")
            #expect(object["reason"] as? String == "no_workers")
            #expect(object["planned"] as? Int == 300)
            #expect(lonely.stderr.contains("--workers N"), "\(lonely.transcript)")

            // A worker now: the same run is resumed and completes.
            _ = try fleet.worker("worker")
            let rerun = try fleet.sync("rerun", tree)
            #expect(await rerun.waitForExit(timeout: .seconds(90)) == 0, "\(rerun.transcript)")
            #expect(rerun.summary?.run_id == lonely.summary?.run_id, "\(rerun.stdout)")
            #expect(rerun.summary?.imported == 300, "\(rerun.stdout)")
        } catch {
            Issue.record("\(error)\n\(fleet.all.map(\.transcript).joined(separator: "\n"))")
        }
        await fleet.shutdown()
    }

    /// An abort the spec has no code for still says why: a stable `reason` class, the error's
    /// class and message in `error` (JSON) and in `status`, until a sync resumes the run.
    @Test(.timeLimit(.minutes(2)))
    func fleetAbortedSyncSaysWhyInTheSummaryAndInStatus() async throws {
        let tree = try FleetTree.make(files: 120)
        defer { tree.remove() }
        let fleet = try await Fleet()
        do {
            let migrate = try fleet.start("migrate", ["migrate"])
            #expect(await migrate.waitForExit(timeout: .seconds(60)) == 0, "\(migrate.transcript)")
            // The database refuses to let the run finish (as a revoked privilege would).
            try await fleet.query { c in
                _ = try await c.executeScript("""
                    CREATE FUNCTION filefleet.no_finish() RETURNS trigger LANGUAGE plpgsql AS $$
                      BEGIN IF NEW.state <> 'running' THEN
                        RAISE EXCEPTION 'runs are read-only today' USING ERRCODE = 'insufficient_privilege';
                      END IF; RETURN NEW; END $$;
                    CREATE TRIGGER no_finish BEFORE UPDATE ON filefleet.runs FOR EACH ROW EXECUTE FUNCTION filefleet.no_finish();
                    """)
            }
            let worker = try fleet.worker("worker")
            let sync = try fleet.sync("sync", tree)
            #expect(await sync.waitForExit(timeout: .seconds(60)) == 4, "\(sync.transcript)")
            let object = try #require(sync.summaryObject, "\(sync.transcript)")
            #expect(object["status"] as? String == "aborted")
            #expect(object["reason"] as? String == "store_error")
            let error = object["error"] as? String ?? ""
            #expect(error.contains("PostgresError 42501") && error.contains("runs are read-only today"), "\(error)")
            let status = try fleet.start("status", ["status"])
            #expect(await status.waitForExit(timeout: .seconds(30)) == 0, "\(status.transcript)")
            #expect(status.stdout.contains("aborted at") && status.stdout.contains("store_error: PostgresError 42501"), "\(status.stdout)")
            // The tools that only read and write PostgreSQL need nothing else: no --kafka, no broker.
            for (name, arguments) in [("status-pg", ["status"]), ("migrate-pg", ["migrate"]), ("lease-pg", ["lease", "list"])] {
                let tool = try FleetProcess(name: name, arguments: arguments + ["--postgres", fleet.postgres.url],
                                            directory: fleet.directory)
                #expect(await tool.waitForExit(timeout: .seconds(30)) == 0, "\(tool.transcript)")
                if name == "status-pg" { #expect(tool.stdout.contains("store_error: PostgresError 42501"), "\(tool.stdout)") }
            }
            // --watch refreshes until stopped: a JSON report per refresh.
            let watching = try FleetProcess(name: "status-watch",
                                            arguments: ["status", "--watch", "--json", "--interval", "0.3", "--postgres", fleet.postgres.url],
                                            directory: fleet.directory)
            try await Task.sleep(for: .seconds(3))
            #expect(watching.exitStatus == nil, "\(watching.transcript)")
            watching.killAndReap()
            let reports = watching.stdout.split(separator: "\n").filter {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["sources"] != nil
            }
            #expect(reports.count >= 3, "\(watching.transcript)")

            try await fleet.query { c in _ = try await c.executeScript("DROP TRIGGER no_finish ON filefleet.runs") }
            let rerun = try fleet.sync("rerun", tree)
            #expect(await rerun.waitForExit(timeout: .seconds(60)) == 0, "\(rerun.transcript)")
            #expect(rerun.summary?.run_id == sync.summary?.run_id && rerun.summaryObject?["error"] is NSNull, "\(rerun.stdout)")
            let after = try fleet.start("status-after", ["status"])
            #expect(await after.waitForExit(timeout: .seconds(30)) == 0)
            #expect(!after.stdout.contains("aborted at"), "\(after.stdout)")
            #expect(await terminateWorkers([worker]) == [0])
        } catch {
            Issue.record("\(error)\n\(fleet.all.map(\.transcript).joined(separator: "\n"))")
        }
        await fleet.shutdown()
    }

    @Test(.timeLimit(.minutes(2)))
    func fleetSecondSyncWhileFirstRunsIsSkipped() async throws {
        let tree = try FleetTree.make(files: 500)
        defer { tree.remove() }
        let fleet = try await Fleet()
        do {
            // No workers: the first sync holds the lease and waits (longer than this test runs).
            let first = try fleet.sync("first", tree, ["--no-worker-timeout", "300"])
            let planned = await fleetEventually(timeout: .seconds(60)) { first.stderr.contains(" event=planned ") }
            try #require(planned && first.isRunning, "\(first.transcript)")

            let start = ContinuousClock.now
            let second = try fleet.sync("second", tree)
            let status = await second.waitForExit(timeout: .seconds(30))
            let elapsed = seconds(since: start)
            print("fleet skipped: second sync exited in \(String(format: "%.2f", elapsed)) s")
            #expect(status == 0, "\(second.transcript)")
            #expect(elapsed < 15)
            let object = try #require(second.summaryObject, "\(second.transcript)")
            #expect(object["status"] as? String == "skipped")
            #expect(object["source_id"] as? String == tree.sourceID)
            #expect(second.stderr.contains(":\(first.pid):"), "stderr must name the holder (pid \(first.pid)): \(second.stderr)")
            #expect(second.stderr.contains("heartbeat"), "stderr must give the holder's heartbeat age: \(second.stderr)")
            #expect(first.isRunning)

            // The first one, interrupted, releases the lease and banks nothing lost.
            first.send(SIGTERM)
            let firstStatus = await first.waitForExit(timeout: .seconds(30))
            #expect(firstStatus == 143, "\(first.transcript)")
            #expect(first.summary?.status == .interrupted)
            #expect(first.summary?.run_id != nil && first.summary?.planned == 500, "\(first.stdout)")
            let holder = try await fleet.query { c in
                try await c.query("SELECT holder FROM \(unescaped: Self.schema.leases) WHERE name = \("sync:" + tree.sourceID)")
                    .first.map { try $0.decode(String?.self, 0) } ?? nil
            }
            #expect(holder == nil, "the interrupted sync must release its lease")
        } catch {
            Issue.record("\(error)\n\(fleet.all.map(\.transcript).joined(separator: "\n"))")
        }
        await fleet.shutdown()
    }

    @Test(.timeLimit(.minutes(3)))
    func fleetFrozenCoordinatorIsTakenOverAndFencedOnResume() async throws {
        let tree = try FleetTree.make(files: 3_000)
        defer { tree.remove() }
        let fleet = try await Fleet()
        // A long grace, so that the early contender below has time to start up and be turned away.
        let grace = 10
        let timing = ["--heartbeat", "1", "--lease-ttl", "3", "--takeover-grace", String(grace)]
        let lease = "sync:" + tree.sourceID
        @Sendable func leaseRow() async throws -> (holder: String?, token: Int64) {
            try await fleet.query { c in
                let row = try await c.query("SELECT holder, token FROM \(unescaped: Self.schema.leases) WHERE name = \(lease)")[0]
                return (try row.decode(String?.self, 0), try row.decode(Int64.self, 1))
            }
        }
        do {
            let frozen = try fleet.sync("frozen", tree, timing)
            // Frozen once the coordinator itself has seen its run (the row alone may be committed a moment earlier).
            let planned = await fleetEventually(timeout: .seconds(60)) {
                frozen.stderr.contains("event=planned") || frozen.stderr.contains("event=resume")
            }
            try #require(planned && frozen.isRunning, "\(frozen.transcript)")
            frozen.send(SIGSTOP)
            let frozenAt = ContinuousClock.now
            let run = try #require(await Self.progress(fleet, tree.sourceID)).run
            let before = try await leaseRow()
            #expect(before.holder?.contains(":\(frozen.pid):") == true)

            // While the lease is fresh, a contender is skipped.
            let early = try fleet.sync("early", tree, timing)
            #expect(await early.waitForExit(timeout: .seconds(20)) == 0, "\(early.transcript)")
            #expect(early.summary?.status == .skipped, "\(early.transcript)")
            print("fleet frozen: contender skipped \(String(format: "%.2f", seconds(since: frozenAt))) s after the freeze")
            let workers = try (0..<2).map { try fleet.worker("worker\($0)") }

            // Once TTL and grace have both passed without a heartbeat, a contender takes over and
            // completes the same run.
            let takeable = await fleetEventually(timeout: .seconds(30)) {
                let row = try? await fleet.query { c in
                    try await c.query("""
                        SELECT expires_at < now() AND heartbeat_at < now() - make_interval(secs => \(grace))
                          FROM \(unescaped: Self.schema.leases) WHERE name = \(lease)
                        """)[0].decode(Bool.self, 0)
                }
                return row == true
            }
            try #require(takeable, "the frozen holder's lease never became takeable")
            let successor = try fleet.sync("successor", tree, timing)
            #expect(await successor.waitForExit(timeout: .seconds(90)) == 0, "\(successor.transcript)")
            let summary = try #require(successor.summary, "\(successor.transcript)")
            #expect(summary.status == .completed)
            #expect(summary.run_id == run, "the successor must continue the frozen one's run")
            #expect(summary.planned == 3_000)
            try await Self.expectDocumentsEqualTree(fleet, tree)
            let after = try await leaseRow()
            #expect(after.token > before.token, "lease token \(before.token) → \(after.token)")
            let finished = try await fleet.query { c in
                try await c.query("SELECT state, finished_at::text FROM \(unescaped: Self.schema.runs) WHERE id = \(run)")
                    .first.map { (try $0.decode(String.self, 0), try $0.decode(String?.self, 1)) }
            }
            #expect(finished?.0 == "completed")

            // Resumed, the frozen one finds itself fenced: exit 4, lease_lost, nothing written.
            frozen.send(SIGCONT)
            let status = await frozen.waitForExit(timeout: .seconds(30))
            #expect(status == 4, "\(frozen.transcript)")
            let object = try #require(frozen.summaryObject, "\(frozen.transcript)")
            #expect(object["status"] as? String == "aborted")
            #expect(object["reason"] as? String == "lease_lost", "\(object)")
            #expect(frozen.summary?.run_id == run && frozen.summary?.planned == 3_000, "\(object)")
            let untouched = try await fleet.query { c in
                try await c.query("SELECT state, finished_at::text, stop_reason FROM \(unescaped: Self.schema.runs) WHERE id = \(run)")
                    .first.map { (try $0.decode(String.self, 0), try $0.decode(String?.self, 1), try $0.decode(String?.self, 2)) }
            }
            #expect(untouched?.0 == finished?.0 && untouched?.1 == finished?.1, "the fenced coordinator finalized: \(String(describing: untouched))")
            #expect(untouched?.2 == nil, "the fenced coordinator recorded a stop on its successor's run: \(String(describing: untouched))")
            let runs = try await fleet.query { c in try await FleetDB.int("SELECT count(*) FROM filefleet.runs", on: c) }
            #expect(runs == 1)
            let final = try await leaseRow()
            #expect(final.token == after.token, "the fenced coordinator must not touch the lease")
            #expect(await terminateWorkers(workers).allSatisfy { $0 == 0 }, "\(workers.map(\.transcript).joined(separator: "\n"))")
        } catch {
            Issue.record("\(error)\n\(fleet.all.map(\.transcript).joined(separator: "\n"))")
        }
        await fleet.shutdown()
    }

    @Test(.timeLimit(.minutes(3)))
    func fleetConvergesWithTinyMaxConnections() async throws {
        let tree = try FleetTree.make(files: 4_000)
        defer { tree.remove() }
        // The coordinator needs 2-3 connections, each worker up to 2: three workers cannot all have theirs.
        let fleet = try await Fleet(postgresSettings: ["max_connections": "4", "superuser_reserved_connections": "0"])
        do {
            let workers = try (0..<3).map { try fleet.worker("worker\($0)", batchSize: 100) }
            let sync = try fleet.sync("sync", tree)
            let status = await sync.waitForExit(timeout: .seconds(150))
            #expect(status == 0, "\(sync.transcript)")
            let summary = try #require(sync.summary, "\(sync.transcript)")
            #expect(summary.status == .completed)
            #expect(summary.planned == 4_000 && summary.imported == 4_000)
            try await Self.expectDocumentsEqualTree(fleet, tree)
            // The server turned connections away (53300): retried, never fatal.
            let refusals = try await fleet.serverLog().components(separatedBy: "too many clients already").count - 1
            print("fleet max_connections=4: \(String(format: "%.1f", summary.elapsed_seconds)) s, \(refusals) connections refused with 53300")
            #expect(refusals > 0, "no connection was refused: the test proves nothing")
            // Every refusal was met by a process that said so: a retry line (what, class, attempt,
            // delay) or the failure it ended in. Counted over all processes against the server's count.
            let said = fleet.all.map { process in
                process.stderr.split(separator: "\n").filter { $0.contains("53300") || $0.contains("class=too_many_connections") }.count
            }
            print("fleet max_connections=4: lines about 53300 per process: \(zip(fleet.all.map(\.name), said).map { "\($0) \($1)" })")
            #expect(said.reduce(0, +) >= refusals, "\(refusals) refusals, \(said.reduce(0, +)) lines about them")
            #expect(fleet.all.flatMap { $0.stderr.split(separator: "\n") }.contains { $0.contains("event=retrying") && $0.contains("what=") },
                    "no retry was logged")
            #expect(await terminateWorkers(workers, timeout: .seconds(40)).allSatisfy { $0 == 0 }, "\(workers.map(\.transcript).joined(separator: "\n"))")
        } catch {
            Issue.record("\(error)\n\(fleet.all.map(\.transcript).joined(separator: "\n"))")
        }
        await fleet.shutdown()
    }

    @Test(.timeLimit(.minutes(4)))
    func fleetConvergesUnderRepeatedWorkerKills() async throws {
        let started = ContinuousClock.now
        let files = 20_000
        let tree = try FleetTree.make(files: files)
        defer { tree.remove() }
        let fleet = try await Fleet()
        do {
            var workers = try (0..<3).map { try fleet.worker("worker\($0)") }
            let sync = try fleet.sync("sync", tree)
            var kills: [Int] = []
            var next = 3
            // Kill a worker every ~2.5 s while the run lasts, and start a replacement.
            while sync.isRunning && kills.count < 8 {
                try await Task.sleep(for: .milliseconds(2500))
                guard sync.isRunning, let p = await Self.progress(fleet, tree.sourceID), p.done < p.planned else { continue }
                let victim = kills.count % workers.count
                workers[victim].killAndReap()
                kills.append(p.done)
                workers[victim] = try fleet.worker("worker\(next)")
                next += 1
            }
            let status = await sync.waitForExit(timeout: .seconds(180))
            #expect(status == 0, "\(sync.transcript)")
            let summary = try #require(sync.summary, "\(sync.transcript)")
            #expect(summary.status == .completed)
            #expect(summary.planned == files && summary.imported == files)
            print("fleet repeated kills: \(kills.count) kills at \(kills); sync \(String(format: "%.1f", summary.elapsed_seconds)) s")
            #expect(kills.count >= 3, "the run ended before enough kills: \(kills)")

            try await Self.expectDocumentsEqualTree(fleet, tree)
            let run = try #require(summary.run_id)
            let stats = try await Self.checkpointStats(fleet, run: run)
            #expect(stats.checkpoints == files && stats.planned == files && stats.unplanned == 0, "\(stats)")

            #expect(await terminateWorkers(workers).allSatisfy { $0 == 0 }, "\(workers.map(\.transcript).joined(separator: "\n"))")
            // Each kill may cost the batch it had in flight (rolled back, redone), no more.
            let writes = try await Self.documentWrites(fleet)
            print("fleet repeated kills: \(writes) document writes for \(files) files; total \(String(format: "%.1f", seconds(since: started))) s")
            #expect(writes <= files + (kills.count + 2) * 200, "document writes \(writes) after \(kills.count) kills")
        } catch {
            Issue.record("\(error)\n\(fleet.all.map(\.transcript).joined(separator: "\n"))")
        }
        await fleet.shutdown()
    }
}
