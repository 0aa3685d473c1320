public import FleetPostgres
public import Foundation

/// A usage error the user must fix: exit 2 with this one line.
public struct UsageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public struct SourceRecord: Sendable {
    public var id: String
    public var root: String
    public var mode: String
    public var bookmark: String?
}

public struct RunRecord: Sendable {
    public var id: Int64
    public var sourceID: String
    public var mode: String
    public var pin: String?
    public var state: String
    public var planned: Int
}

/// Counts of a run's checkpoints by outcome.
public struct OutcomeCounts: Sendable, Equatable {
    public var imported = 0, unchanged = 0, deleted = 0, failed = 0
    public var total: Int { imported + unchanged + deleted + failed }
}

/// The SQL of sources, runs, plans and checkpoint counts.
public struct RunStore: Sendable {
    public let schema: Schema

    public init(schema: Schema) {
        self.schema = schema
    }

    /// Binds `id` to `root` at its first sync; another root for the same id is a usage error.
    public func registerSource(id: String, root: String, mode: String, on c: PostgresConnection) async throws -> SourceRecord {
        try await c.execute("""
            INSERT INTO \(unescaped: schema.sources) (id, root, mode) VALUES (\(id), \(root), \(mode))
            ON CONFLICT (id) DO NOTHING
            """)
        let row = try await c.query("SELECT root, mode, bookmark FROM \(unescaped: schema.sources) WHERE id = \(id)")[0]
        let record = SourceRecord(id: id, root: try row.decode(String.self, 0), mode: try row.decode(String.self, 1),
                                  bookmark: try row.decode(String?.self, 2))
        guard record.root == root else {
            throw UsageError("--source-id \(id) is bound to \(record.root), not \(root): choose another --source-id")
        }
        return record
    }

    public func openRun(sourceID: String, on c: PostgresConnection) async throws -> RunRecord? {
        try await c.query("""
            SELECT id, source_id, mode, pin, state, planned FROM \(unescaped: schema.runs)
             WHERE source_id = \(sourceID) AND state = 'running'
            """).first.map(Self.run)
    }

    /// Stores a new run and its plan. Call inside the lease's fenced transaction.
    public func createRun(sourceID: String, mode: String, pin: String?, token: Int64, plan: [String],
                          maxFileBytes: Int, maxAttempts: Int, on c: PostgresConnection) async throws -> RunRecord {
        let run = try await insertRun(sourceID: sourceID, mode: mode, pin: pin, token: token, planned: plan.count,
                                      maxFileBytes: maxFileBytes, maxAttempts: maxAttempts, on: c)
        try await c.copyFrom("COPY \(unescaped: schema.plannedPaths) (run_id, path) FROM STDIN") { writer in
            for path in plan { try await writer.writeRow(run.id, path) }
        }
        return run
    }

    /// Stores a new directory run whose plan is staged on `c` (`DirectoryPlanner.plan`): every
    /// staged path but the touched ones, copied by the server. Call inside the lease's fenced
    /// transaction, on the connection that planned.
    public func createRun(sourceID: String, staged plan: DirectoryPlan, token: Int64,
                          maxFileBytes: Int, maxAttempts: Int, on c: PostgresConnection) async throws -> RunRecord {
        let run = try await insertRun(sourceID: sourceID, mode: "directory", pin: nil, token: token, planned: plan.planned,
                                      maxFileBytes: maxFileBytes, maxAttempts: maxAttempts, on: c)
        let stored = try await c.execute("""
            INSERT INTO \(unescaped: schema.plannedPaths) (run_id, path)
            SELECT \(run.id), path FROM \(unescaped: DirectoryPlan.table) WHERE action <> 'touch'
            """)
        guard stored == plan.planned else { throw StagedPlanMismatch(stored: stored, counted: plan.planned) }
        return run
    }

    /// The staged plan changed between counting and storing (never expected: both read one table
    /// of one session). Not the user's doing, so not a `UsageError`: the sync aborts `internal_error`.
    struct StagedPlanMismatch: Error, CustomStringConvertible {
        let stored: Int, counted: Int
        var description: String { "the staged plan holds \(stored) paths, the planner counted \(counted)" }
    }

    private func insertRun(sourceID: String, mode: String, pin: String?, token: Int64, planned: Int,
                           maxFileBytes: Int, maxAttempts: Int, on c: PostgresConnection) async throws -> RunRecord {
        try Self.run(try await c.query("""
            INSERT INTO \(unescaped: schema.runs) (source_id, mode, pin, lease_token, planned, max_file_bytes, max_attempts)
            VALUES (\(sourceID), \(mode), \(pin), \(token), \(planned), \(maxFileBytes), \(maxAttempts))
            RETURNING id, source_id, mode, pin, state, planned
            """)[0])
    }

    /// One page of the planned paths of `run` that have no checkpoint: the first `limit` planned
    /// paths after `after` (in the column's order), less those banked. `next` is where the next
    /// page starts, nil after the last. A page holds at most `limit` paths, so a run of any size
    /// is read in constant memory (a million remaining paths were ~180 MB read at once).
    ///
    /// Two range scans of the tables' primary keys (both lead with `run_id`) and no join: linear
    /// whatever the statistics say. An anti join planned from statistics older than the run (one
    /// row expected) became a nested loop: 538 s at 50,000 planned and 25,000 banked paths.
    public func remainingPaths(run: Int64, after: String?, limit: Int, on c: PostgresConnection) async throws -> RemainingPage {
        let planned = try await c.query(plannedPageQuery(run: run, after: after, limit: limit)).map { try $0.decode(String.self, 0) }
        guard let first = planned.first, let last = planned.last else { return RemainingPage(paths: [], next: nil) }
        let banked = Set(try await c.query(bankedRangeQuery(run: run, from: first, through: last))
            .map { ExactPath(try $0.decode(String.self, 0)) })
        let paths = banked.isEmpty ? planned : planned.filter { !banked.contains(ExactPath($0)) }
        return RemainingPage(paths: paths, next: planned.count < limit ? nil : last)
    }

    public struct RemainingPage: Sendable {
        public var paths: [String]
        public var next: String?
    }

    func plannedPageQuery(run: Int64, after: String?, limit: Int) -> PostgresQuery {
        guard let after else {
            return "SELECT path FROM \(unescaped: schema.plannedPaths) WHERE run_id = \(run) ORDER BY path LIMIT \(limit)"
        }
        return """
            SELECT path FROM \(unescaped: schema.plannedPaths) WHERE run_id = \(run) AND path > \(after)
             ORDER BY path LIMIT \(limit)
            """
    }

    func bankedRangeQuery(run: Int64, from first: String, through last: String) -> PostgresQuery {
        """
        SELECT path FROM \(unescaped: schema.checkpoints)
         WHERE run_id = \(run) AND path >= \(first) AND path <= \(last)
        """
    }

    public func checkpointCount(run: Int64, on c: PostgresConnection) async throws -> Int {
        try await c.query("SELECT count(*) FROM \(unescaped: schema.checkpoints) WHERE run_id = \(run)")[0].decode(Int.self, 0)
    }

    /// Outcomes of `run`'s checkpoints, those written at or after `since` (database time) only if given.
    public func outcomes(run: Int64, since: Date? = nil, on c: PostgresConnection) async throws -> OutcomeCounts {
        var counts = OutcomeCounts()
        let rows = try await c.query("""
            SELECT outcome, count(*) FROM \(unescaped: schema.checkpoints)
             WHERE run_id = \(run) AND (\(since)::timestamptz IS NULL OR done_at >= \(since))
             GROUP BY outcome
            """)
        for row in rows {
            let n = try row.decode(Int.self, 1)
            switch try row.decode(String.self, 0) {
            case "imported": counts.imported = n
            case "unchanged": counts.unchanged = n
            case "deleted": counts.deleted = n
            default: counts.failed = n
            }
        }
        return counts
    }

    /// Ends the run. Call inside the lease's fenced transaction.
    public func finish(run: Int64, state: String, on c: PostgresConnection) async throws {
        try await c.execute("""
            UPDATE \(unescaped: schema.runs) SET state = \(state), finished_at = now() WHERE id = \(run)
            """)
    }

    /// Why a sync of `run` aborted, for `status`; `nil` clears it (a sync takes the run up again).
    /// With `lease`, only while the lease still has that token (released or not): once another
    /// holder has taken it, the run is the successor's, and a superseded holder leaves it alone
    /// (SPEC §6.5). The key-share lock makes a takeover wait for this statement, as for `fenced`.
    /// Returns whether the run was updated.
    @discardableResult
    func recordStop(_ stop: RunStop?, run: Int64, lease: (name: String, token: Int64)? = nil,
                    on c: PostgresConnection) async throws -> Bool {
        try await c.execute("""
            UPDATE \(unescaped: schema.runs)
               SET stop_reason = \(stop?.reason), stop_error = \(stop?.error), stopped_at = CASE WHEN \(stop?.reason)::text IS NULL THEN NULL ELSE now() END
             WHERE id = \(run)
               AND (\(lease?.name)::text IS NULL
                    OR EXISTS (SELECT 1 FROM \(unescaped: schema.leases)
                                WHERE name = \(lease?.name) AND token = \(lease?.token) FOR KEY SHARE))
            """) == 1
    }

    /// Workers that heart-beat recently and have not stopped (as `filefleet status` counts them).
    public func liveWorkers(on c: PostgresConnection) async throws -> Int {
        try await c.query("""
            SELECT count(*) FROM \(unescaped: schema.workers)
             WHERE state <> 'stopped' AND heartbeat_at > now() - make_interval(secs => \(StatusReport.liveWorkerWindow))
            """)[0].decode(Int.self, 0)
    }

    public func databaseNow(on c: PostgresConnection) async throws -> Date {
        try await c.query("SELECT now()")[0].decode(Date.self, 0)
    }

    static func run(_ row: PostgresRow) throws -> RunRecord {
        RunRecord(id: try row.decode(Int64.self, 0), sourceID: try row.decode(String.self, 1),
                  mode: try row.decode(String.self, 2), pin: try row.decode(String?.self, 3),
                  state: try row.decode(String.self, 4), planned: try row.decode(Int.self, 5))
    }
}
