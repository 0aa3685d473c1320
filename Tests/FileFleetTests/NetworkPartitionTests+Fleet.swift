@testable import FileFleet
import FleetPostgres
import Foundation
import Testing
import TestSupport

/// A fleet across a network (issue 14): the coordinator on node 1, workers on nodes 2 and 3, all
/// real `filefleet` processes, Postgres and the broker on the bridge. Tight but realistic timing:
/// a lease heartbeat a second, TTL 6 s, grace 3 beats; the broker's quick-join session timeout
/// (3 s, SPEC §9.1). Each batch's insert takes 0.2 s longer (a statement trigger), so that a run
/// of 3,000 files lasts long enough to be cut into.
extension NetworkPartitionTests {
    static let leaseTiming = ["--heartbeat", "1", "--lease-ttl", "6", "--takeover-grace", "3"]
    static let leaseGrace = 3
    static let workerArguments = ["worker", "--batch-size", "25", "--concurrency", "1", "--batch-timeout", "30"]

    /// (a) The lease holder's node is cut off mid-run. A contender on node 2 started at once is
    /// skipped (the lease expires a TTL after the last heartbeat); once TTL and grace have both
    /// passed, the next one takes over, republishes what remains and completes. When node 1's link
    /// returns, its coordinator learns it was superseded and exits 4 (`lease_lost`), having
    /// written nothing since the cut (the audit, by node address).
    @Test(.enabled(if: NetworkLab.isAvailable), .timeLimit(.minutes(3)))
    func aCutLeaseHolderIsTakenOverAndExits4WithoutWritingWhenItsLinkReturns() async throws {
        try await Self.onLab(nodes: 3) { lab, tree, fleet in
            let (holderNode, contenderNode) = (lab.nodes[0], lab.nodes[1])
            let lease = "sync:" + tree.sourceID
            try await BrokerRestartTests.slowBatches(fleet, seconds: 0.2)
            try await WriteAudit.install(fleet)
            let workers = try [lab.nodes[1], lab.nodes[2]].enumerated().map {
                try fleet.start("worker\($0.offset + 2)", Self.workerArguments, node: $0.element)
            }
            let holder = try fleet.sync("holder", tree, Self.leaseTiming, node: holderNode)
            let published = await fleetEventually(timeout: .seconds(60)) {
                holder.stderr.contains(" event=published ") || !holder.isRunning
            }
            _ = await BrokerRestartTests.waitForProgress(fleet, tree, holder, atLeast: 300)
            try #require(published && holder.isRunning, "the holder was not caught mid-run\n\(holder.transcript)")
            let run = try #require(await FleetProcessTests.progress(fleet, tree.sourceID)).run
            let before = try await Self.leaseRow(fleet, lease)
            #expect(before.holder?.contains(":\(holder.pid):") == true, "\(before)")

            try lab.cut(holderNode)
            let cutAt = ContinuousClock.now
            let cutAtDB = try await Self.databaseNow(fleet)
            let doneAtCut = await FleetProcessTests.progress(fleet, tree.sourceID)?.done ?? 0

            // Before TTL and grace have passed the holder may be alive: a contender is skipped.
            let early = try fleet.sync("early", tree, Self.leaseTiming, node: contenderNode)
            let earlyStatus = await early.waitForExit(timeout: .seconds(30))
            let earlyAfter = seconds(since: cutAt)
            #expect(earlyStatus == 0, "\(early.transcript)")
            #expect(early.summaryObject?["status"] as? String == "skipped", "\(early.transcript)")
            #expect(early.stderr.contains(":\(holder.pid):") && early.stderr.contains("heartbeat"),
                    "stderr must name the holder and its heartbeat age: \(early.stderr)")
            #expect(try await Self.leaseRow(fleet, lease).token == before.token, "the early contender took the lease")

            // Past TTL and grace without a heartbeat: the next contender takes over.
            let takeable = await fleetEventually(timeout: .seconds(30), every: .milliseconds(100)) {
                let row = try? await fleet.query { c in
                    try await c.query("""
                        SELECT expires_at < now() AND heartbeat_at < now() - make_interval(secs => \(Self.leaseGrace))
                          FROM filefleet.leases WHERE name = \(lease)
                        """)[0].decode(Bool.self, 0)
                }
                return row == true
            }
            try #require(takeable, "the cut holder's lease never became takeable")
            let lapsed = try await Self.leaseRow(fleet, lease)
            let successor = try fleet.sync("successor", tree, Self.leaseTiming, node: contenderNode)
            let taken = await fleetEventually(timeout: .seconds(30), every: .milliseconds(50)) {
                ((try? await Self.leaseRow(fleet, lease))?.token ?? 0) > before.token || !successor.isRunning
            }
            try #require(taken, "the successor did not take the lease\n\(successor.transcript)")
            let takeover = try await Self.leaseRow(fleet, lease)
            let takeoverAt = try #require(takeover.acquiredAt)
            #expect(takeover.token == before.token + 1 && takeover.holder?.contains(":\(successor.pid):") == true, "\(takeover)")

            let successorStatus = await successor.waitForExit(timeout: .seconds(120))
            let completedAfter = seconds(since: cutAt)
            #expect(successorStatus == 0, "\(successor.transcript)")
            let summary = try #require(successor.summary, "\(successor.transcript)")
            #expect(summary.status == .completed && summary.run_id == run && summary.planned == 3000, "\(successor.stdout)")
            #expect(summary.resumed >= doneAtCut, "resumed \(summary.resumed), banked at the cut \(doneAtCut)")
            let republished = Int(Self.lastField("paths", of: "published", in: successor.stderr) ?? "") ?? 0
            #expect(republished > 0 && republished <= 3000 - doneAtCut,
                    "the successor republished \(republished) paths (banked at the cut: \(doneAtCut))\n\(successor.stderr)")

            // Cut off, the old holder cannot know: it still runs. Its link returns.
            try #require(holder.isRunning, "the cut holder exited before its link returned\n\(holder.transcript)")
            try lab.restore(holderNode)
            let restoredAt = ContinuousClock.now
            let cutFor = seconds(since: cutAt)
            let holderStatus = await holder.waitForExit(timeout: .seconds(90))
            let exitedAfter = seconds(since: restoredAt)
            #expect(holderStatus == 4, "\(holder.transcript)")
            let object = holder.summaryObject
            #expect(object?["status"] as? String == "aborted" && object?["reason"] as? String == "lease_lost",
                    "\(holder.transcript)")
            #expect(holder.summary?.run_id == run, "\(holder.stdout)")

            // It wrote nothing after the takeover, nor since the cut; it published only before it.
            let afterCut = try await WriteAudit.writes(fleet, from: holderNode.address, after: cutAtDB)
            let afterTakeover = afterCut.filter { $0.at > takeoverAt }
            #expect(afterTakeover.isEmpty, "the fenced holder wrote after the takeover: \(afterTakeover)")
            #expect(afterCut.isEmpty, "the holder wrote after the cut: \(afterCut)")
            let beforeCut = try await WriteAudit.writes(fleet, from: holderNode.address, after: .distantPast).count
            #expect(beforeCut >= 3000, "the audit saw \(beforeCut) writes from the holder's node before the cut (its plan alone is 3000)")
            #expect(Self.events("published", in: holder.stderr) == 1, "\(holder.stderr)")
            // The run is the successor's: completed, no stop recorded over it, one run; the lease
            // keeps the successor's token, released.
            let runRow = try await fleet.query { c in
                try await c.query("SELECT state, stop_reason, (SELECT count(*) FROM filefleet.runs) FROM filefleet.runs WHERE id = \(run)")
                    .first.map { (try $0.decode(String.self, 0), try $0.decode(String?.self, 1), try $0.decode(Int.self, 2)) }
            }
            #expect(runRow?.0 == "completed" && runRow?.1 == nil && runRow?.2 == 1, "\(String(describing: runRow))")
            let final = try await Self.leaseRow(fleet, lease)
            #expect(final.token == takeover.token && final.holder == nil, "\(final)")

            try await Self.expectTableEqualsTree(fleet, tree)
            try await Self.expectCheckpointsEqualPlan(fleet, run: run, tree: tree)
            let lastBeat = lapsed.heartbeatAt.map { cutAtDB.timeIntervalSince($0) } ?? .nan
            let expiry = lapsed.expiresAt.map { $0.timeIntervalSince(cutAtDB) } ?? .nan
            print("network fleet: holder cut at \(doneAtCut)/3000 done (last heartbeat \(Self.format(lastBeat)) s before); "
                  + "early contender skipped, exited \(Self.format(earlyAfter)) s after the cut; lease expired "
                  + "\(Self.format(expiry)) s after the cut; takeover \(Self.format(takeoverAt.timeIntervalSince(cutAtDB))) s after the cut "
                  + "(token \(before.token) → \(takeover.token)); successor republished \(republished) paths, completed "
                  + "\(Self.format(completedAfter)) s after the cut; link restored after \(Self.format(cutFor)) s; old holder exited "
                  + "\(holderStatus.map(String.init) ?? "-") (\(object?["reason"] as? String ?? "-")) \(Self.format(exitedAfter)) s later; "
                  + "its writes since the cut: \(afterCut.count), before it: \(beforeCut)")
            #expect(await terminateWorkers(workers) == [0, 0], "\(workers.map(\.transcript).joined(separator: "\n"))")
        }
    }

    /// (b) A worker's node is cut off mid-batch for longer than the session timeout. The group
    /// drops it and its partitions move to the other worker; when the link returns (before the
    /// server drops its sessions, so its transaction from before the move is still open) it
    /// rejoins. The run converges and no document is written twice: the in-flight batch commits
    /// once, by whichever transaction is first, and the other skips what it finds checkpointed.
    @Test(.enabled(if: NetworkLab.isAvailable), .timeLimit(.minutes(3)))
    func aWorkerCutPastItsSessionTimeoutLosesItsPartitionsAndRejoinsWithoutAStaleWrite() async throws {
        try await Self.onLab(nodes: 3) { lab, tree, fleet in
            let (coordinatorNode, survivorNode, cutNode) = (lab.nodes[0], lab.nodes[1], lab.nodes[2])
            try await BrokerRestartTests.slowBatches(fleet, seconds: 0.2)
            try await WriteAudit.install(fleet)
            let survivor = try fleet.start("worker2", Self.workerArguments, node: survivorNode)
            let cut = try fleet.start("worker3", Self.workerArguments, node: cutNode)
            let sync = try fleet.sync("sync", tree, Self.leaseTiming, node: coordinatorNode)
            let bothAssigned = await fleetEventually(timeout: .seconds(60)) {
                !(Self.assignments(survivor.stderr).last ?? []).isEmpty && !(Self.assignments(cut.stderr).last ?? []).isEmpty
                    || !sync.isRunning
            }
            _ = await BrokerRestartTests.waitForProgress(fleet, tree, sync, atLeast: 300)
            try #require(bothAssigned && sync.isRunning, "the run was not caught mid-way with both workers assigned\n\(sync.transcript)")
            // Cut while the worker is inside a transaction that has written rows.
            let inTransaction = await fleetEventually(timeout: .seconds(20), every: .milliseconds(20)) {
                ((try? await Self.sessions(fleet, from: cutNode)) ?? (0, 0)).inTransaction > 0
            }
            try lab.cut(cutNode)
            let cutAt = ContinuousClock.now
            let cutAtWall = Date()
            try #require(inTransaction, "the cut worker never held a transaction open\n\(cut.transcript)")
            let cutPartitions = Self.assignments(cut.stderr).last ?? []
            let survivorSeen = Self.assignments(survivor.stderr).count
            let doneAtCut = await FleetProcessTests.progress(fleet, tree.sourceID)?.done ?? 0

            // Past the session timeout the group drops the silent member; its partitions move.
            let moved = await fleetEventually(timeout: .seconds(25), every: .milliseconds(100)) {
                Self.assignments(survivor.stderr).dropFirst(survivorSeen).contains { $0.isSuperset(of: cutPartitions) }
            }
            let movedAfter = seconds(since: cutAt)
            #expect(moved, "the cut worker's partitions \(cutPartitions.sorted()) did not move\n\(survivor.transcript)")
            // The link stays down well past the move (at least 10 s, three session timeouts), and
            // comes back before the server would drop the worker's sessions (about 25-30 s).
            try await Task.sleep(until: cutAt + .milliseconds(Int64(max(10, movedAfter + 2) * 1000)))
            let cutSeen = Self.assignments(cut.stderr).count
            let cutFor = seconds(since: cutAt)
            try lab.restore(cutNode)
            let restoredAt = ContinuousClock.now
            let restoredAtDB = try await Self.databaseNow(fleet)

            let rejoined = await fleetEventually(timeout: .seconds(45)) {
                Self.assignments(cut.stderr).dropFirst(cutSeen).contains { !$0.isEmpty } || !cut.isRunning
            }
            let rejoinedAfter = seconds(since: restoredAt)
            #expect(rejoined && cut.isRunning, "the cut worker did not rejoin\n\(cut.transcript)")
            let status = await sync.waitForExit(timeout: .seconds(120))
            let completedAfter = seconds(since: cutAt)
            #expect(status == 0, "\(sync.transcript)")
            let summary = try #require(sync.summary, "\(sync.transcript)")
            #expect(summary.status == .completed && summary.planned == 3000 && summary.imported == 3000, "\(sync.stdout)")
            let run = try #require(summary.run_id)

            try await Self.expectTableEqualsTree(fleet, tree)
            try await Self.expectCheckpointsEqualPlan(fleet, run: run, tree: tree)
            let repeated = try await WriteAudit.repeatedDocumentWrites(fleet)
            #expect(repeated.isEmpty, "documents written more than once: \(repeated.prefix(10))")
            let lateCheckpoints = try await WriteAudit.writes(fleet, from: cutNode.address, after: restoredAtDB)
                .filter { $0.table == "checkpoints" }.count
            let writes = try await FleetProcessTests.documentWrites(fleet)
            // The cut worker's own view (librdkafka's session timer): when it gave its partitions up.
            let lostAfter = Self.eventTimes("lost", in: cut.stderr).first { $0 > cutAtWall }.map { Self.format($0.timeIntervalSince(cutAtWall)) } ?? "-"
            print("network fleet: worker cut at \(doneAtCut)/3000 done, holding partitions \(Self.list(cutPartitions)); "
                  + "it declared them lost \(lostAfter) s after the cut; "
                  + "they moved to the other worker \(Self.format(movedAfter)) s after the cut; link restored after "
                  + "\(Self.format(cutFor)) s; the worker rejoined with partitions \(Self.format(rejoinedAfter)) s later and "
                  + "checkpointed \(lateCheckpoints) paths after its link returned; run completed \(Self.format(completedAfter)) s "
                  + "after the cut; documents written twice: \(repeated.count); document rows written (statistics, "
                  + "rolled-back inserts included): \(writes) for 3000 files")
            #expect(await terminateWorkers([survivor, cut]) == [0, 0], "\(survivor.transcript)\n\(cut.transcript)")
        }
    }

    // MARK: -

    /// `documents` holds exactly the tree: each path with its SHA-256 and its size, nothing else.
    static func expectTableEqualsTree(_ fleet: Fleet, _ tree: FleetTree,
                                      sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let stored = try await fleet.query { c in
            var rows: [String: String] = [:]
            for row in try await c.query("SELECT path, sha256, size FROM filefleet.documents WHERE source_id = \(tree.sourceID)") {
                rows[try row.decode(String.self, 0)] = "\(try row.decode(String.self, 1)) \(try row.decode(Int.self, 2))"
            }
            return rows
        }
        let expected = tree.expected.reduce(into: [String: String]()) { $0[$1.key] = "\($1.value) \(tree.sizes[$1.key] ?? -1)" }
        #expect(stored == expected, "\(difference(stored, expected))", sourceLocation: sourceLocation)
    }

    /// The run's checkpoints are its plan, one per planned path, and the plan is the tree.
    static func expectCheckpointsEqualPlan(_ fleet: Fleet, run: Int64, tree: FleetTree,
                                           sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let counts = try await fleet.query { c in
            try await c.query("""
                SELECT (SELECT count(*) FROM filefleet.checkpoints WHERE run_id = \(run)),
                       (SELECT count(DISTINCT path) FROM filefleet.checkpoints WHERE run_id = \(run)),
                       (SELECT count(*) FROM filefleet.planned_paths WHERE run_id = \(run)),
                       (SELECT count(*) FROM (SELECT path FROM filefleet.planned_paths WHERE run_id = \(run)
                                              EXCEPT SELECT path FROM filefleet.checkpoints WHERE run_id = \(run)) missing),
                       (SELECT count(*) FROM (SELECT path FROM filefleet.checkpoints WHERE run_id = \(run)
                                              EXCEPT SELECT path FROM filefleet.planned_paths WHERE run_id = \(run)) unplanned),
                       (SELECT planned FROM filefleet.runs WHERE id = \(run))
                """)[0]
        }
        let (checkpoints, distinct, planned) = (try counts.decode(Int.self, 0), try counts.decode(Int.self, 1), try counts.decode(Int.self, 2))
        let (missing, unplanned, runPlanned) = (try counts.decode(Int.self, 3), try counts.decode(Int.self, 4), try counts.decode(Int.self, 5))
        let described = "checkpoints \(checkpoints) (distinct paths \(distinct)), planned \(planned) (runs.planned \(runPlanned)), "
            + "planned without a checkpoint \(missing), checkpoints not planned \(unplanned)"
        #expect(checkpoints == planned && distinct == checkpoints && missing == 0 && unplanned == 0 && runPlanned == planned,
                "\(described)", sourceLocation: sourceLocation)
        let plan = try await fleet.query { c in
            Set(try await c.query("SELECT path FROM filefleet.planned_paths WHERE run_id = \(run)").map { try $0.decode(String.self, 0) })
        }
        #expect(plan == Set(tree.expected.keys), "the plan is not the tree: \(plan.count) planned, \(tree.expected.count) files",
                sourceLocation: sourceLocation)
    }

    struct LeaseRow: Sendable {
        var holder: String?
        var token: Int64
        var heartbeatAt: Date?
        var expiresAt: Date?
        var acquiredAt: Date?
    }

    static func leaseRow(_ fleet: Fleet, _ name: String) async throws -> LeaseRow {
        try await fleet.query { c in
            let row = try await c.query("""
                SELECT holder, token, heartbeat_at, expires_at, acquired_at FROM filefleet.leases WHERE name = \(name)
                """)[0]
            return LeaseRow(holder: try row.decode(String?.self, 0), token: try row.decode(Int64.self, 1),
                            heartbeatAt: try row.decode(Date?.self, 2), expiresAt: try row.decode(Date?.self, 3),
                            acquiredAt: try row.decode(Date?.self, 4))
        }
    }

    static func databaseNow(_ fleet: Fleet) async throws -> Date {
        try await fleet.query { c in try await c.query("SELECT now()")[0].decode(Date.self, 0) }
    }

    /// The partitions of each `event=assigned` line of a worker's log, in order.
    static func assignments(_ log: String) -> [Set<Int>] {
        log.split(separator: "\n").filter { $0.contains(" event=assigned ") }.map { line in
            let value = line.split(separator: " ").first { $0.hasPrefix("partitions=") }?.dropFirst("partitions=".count) ?? ""
            return Set(value.split(separator: ",").compactMap { Int($0) })
        }
    }

    /// The value of `key` in the last `event=<event>` line of a log.
    static func lastField(_ key: String, of event: String, in log: String) -> String? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains(" event=\(event) ") }) else { return nil }
        return line.split(separator: " ").first { $0.hasPrefix("\(key)=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    /// When each `event=<event>` line of a log was written (its `time=` field).
    static func eventTimes(_ event: String, in log: String) -> [Date] {
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return log.split(separator: "\n").filter { $0.contains(" event=\(event) ") }.compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("time=") }.flatMap { format.date(from: String($0.dropFirst(5))) }
        }
    }

    static func events(_ event: String, in log: String) -> Int { log.components(separatedBy: " event=\(event) ").count - 1 }

    static func format(_ seconds: Double) -> String { String(format: "%.1f", seconds) }

    static func list(_ partitions: Set<Int>) -> String { partitions.sorted().map(String.init).joined(separator: ",") }
}

/// Every committed row change in FileFleet's tables, with the address of the session that made it
/// (row triggers; a rolled-back change leaves nothing). On a `NetworkLab` each node has its own
/// address, so this says which node wrote what, and when by the database clock. The schema does
/// not: a checkpoint names its worker and a run the token that created it, but nothing names who
/// updated a run, a lease or a document.
enum WriteAudit {
    static let tables = ["sources", "runs", "planned_paths", "checkpoints", "documents", "leases", "failures", "workers"]

    /// After `migrate`.
    static func install(_ fleet: Fleet) async throws {
        let triggers = tables.map {
            "CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON filefleet.\($0) FOR EACH ROW EXECUTE FUNCTION fleet_audit.record();"
        }
        try await fleet.query { c in
            _ = try await c.executeScript("""
                CREATE SCHEMA fleet_audit;
                CREATE TABLE fleet_audit.writes (
                    at     timestamptz NOT NULL DEFAULT clock_timestamp(),
                    client inet,
                    tbl    text NOT NULL,
                    op     text NOT NULL,
                    path   text,
                    sha256 text,
                    detail jsonb
                );
                CREATE FUNCTION fleet_audit.record() RETURNS trigger LANGUAGE plpgsql AS $$
                  DECLARE r jsonb;
                  BEGIN
                    IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
                    r := r - 'body' - 'frontmatter';
                    INSERT INTO fleet_audit.writes (client, tbl, op, path, sha256, detail)
                    VALUES (inet_client_addr(), TG_TABLE_NAME, TG_OP, r->>'path', r->>'sha256', r);
                    RETURN NULL;
                  END $$;
                \(triggers.joined(separator: "\n"))
                """)
        }
    }

    struct Write: Sendable, CustomStringConvertible {
        let at: Date
        let table: String
        let op: String
        let detail: String
        var description: String { "\(at) \(op) \(table) \(detail)" }
    }

    /// What sessions from `address` changed after `after`, oldest first.
    static func writes(_ fleet: Fleet, from address: String, after: Date) async throws -> [Write] {
        try await fleet.query { c in
            try await c.query("""
                SELECT at, tbl, op, coalesce(detail::text, '') FROM fleet_audit.writes
                 WHERE client = \(address)::inet AND at > \(after) ORDER BY at
                """).map {
                Write(at: try $0.decode(Date.self, 0), table: try $0.decode(String.self, 1), op: try $0.decode(String.self, 2),
                      detail: try $0.decode(String.self, 3))
            }
        }
    }

    /// Documents that committed transactions wrote (inserted or updated) more than once: path,
    /// writes, and how many of them wrote content it already had.
    static func repeatedDocumentWrites(_ fleet: Fleet) async throws -> [(path: String, writes: Int, sameContent: Int)] {
        try await fleet.query { c in
            try await c.query("""
                SELECT path, count(*), count(*) - count(DISTINCT sha256) FROM fleet_audit.writes
                 WHERE tbl = 'documents' AND op IN ('INSERT', 'UPDATE') GROUP BY path HAVING count(*) > 1 ORDER BY path
                """).map { (try $0.decode(String.self, 0), try $0.decode(Int.self, 1), try $0.decode(Int.self, 2)) }
        }
    }
}
