public import FleetPostgres
public import Foundation

/// The SQL of `runs` and their plans (`planned_paths`, and git's `git_worktree_paths`): a run is
/// created with its whole plan in the lease's fenced transaction, read page by page, and finished.
public struct RunStore: Sendable {
    public let schema: Schema

    public init(schema: Schema) {
        self.schema = schema
    }

    public func openRun(sourceID: String, on c: PostgresConnection) async throws -> RunRecord? {
        try await c.query("""
            SELECT id, source_id, mode, pin, state, planned, message_key FROM \(unescaped: schema.runs)
             WHERE source_id = \(sourceID) AND state = \(RunState.running.rawValue)
            """).first.map(Self.run)
    }

    /// Stores a new run and its plan. Call inside the lease's fenced transaction.
    public func createRun(sourceID: String, mode: SourceMode, pin: String?, token: Int64, plan: [String],
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
        let run = try await insertRun(sourceID: sourceID, mode: .directory, pin: nil, token: token, planned: plan.planned,
                                      maxFileBytes: maxFileBytes, maxAttempts: maxAttempts, on: c)
        let stored = try await c.execute("""
            INSERT INTO \(unescaped: schema.plannedPaths) (run_id, path)
            SELECT \(run.id), path FROM \(unescaped: DirectoryPlan.table) WHERE action <> 'touch'
            """)
        guard stored == plan.planned else { throw StagedPlanMismatch(stored: stored, counted: plan.planned) }
        return run
    }

    /// Stores a new directory run whose plan `planning` writes into `planned_paths` itself (a first
    /// sync's walk, copied straight in) and returns the count of. Call inside the lease's fenced
    /// transaction.
    public func createRun(sourceID: String, token: Int64, maxFileBytes: Int, maxAttempts: Int, on c: PostgresConnection,
                          planning: (RunRecord) async throws -> Int) async throws -> RunRecord {
        var run = try await insertRun(sourceID: sourceID, mode: .directory, pin: nil, token: token, planned: 0,
                                      maxFileBytes: maxFileBytes, maxAttempts: maxAttempts, on: c)
        run.planned = try await planning(run)
        try await c.execute("UPDATE \(unescaped: schema.runs) SET planned = \(run.planned) WHERE id = \(run.id)")
        return run
    }

    /// The staged plan changed between counting and storing (never expected: both read one table
    /// of one session). Not the user's doing, so not a `UsageError`: the sync aborts `internal_error`.
    struct StagedPlanMismatch: Error, CustomStringConvertible {
        let stored: Int, counted: Int
        var description: String { "the staged plan holds \(stored) paths, the planner counted \(counted)" }
    }

    private func insertRun(sourceID: String, mode: SourceMode, pin: String?, token: Int64, planned: Int,
                           maxFileBytes: Int, maxAttempts: Int, on c: PostgresConnection) async throws -> RunRecord {
        try Self.run(try await c.query("""
            INSERT INTO \(unescaped: schema.runs) (source_id, mode, pin, lease_token, planned, max_file_bytes, max_attempts, message_key)
            VALUES (\(sourceID), \(mode.rawValue), \(pin), \(token), \(planned), \(maxFileBytes), \(maxAttempts), \(Self.newMessageKey()))
            RETURNING id, source_id, mode, pin, state, planned, message_key
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
        let banked = Set(try await c.query(CheckpointStore(schema: schema).bankedRangeQuery(run: run, from: first, through: last))
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

    /// Ends the run. Call inside the lease's fenced transaction.
    public func finish(run: Int64, state: RunState, on c: PostgresConnection) async throws {
        try await c.execute("""
            UPDATE \(unescaped: schema.runs) SET state = \(state.rawValue), finished_at = now() WHERE id = \(run)
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

    /// What a worker needs of a run to import its paths: the source's root and the run's limits.
    func context(run: Int64, on c: PostgresConnection) async throws -> RunContext? {
        try await c.query("""
            SELECT r.source_id, s.root, r.state, r.max_file_bytes, r.max_attempts, r.message_key
              FROM \(unescaped: schema.runs) r JOIN \(unescaped: schema.sources) s ON s.id = r.source_id
             WHERE r.id = \(run)
            """).first.map { row in
            RunContext(id: run, sourceID: try row.decode(String.self, 0), root: try row.decode(String.self, 1),
                       state: RunState(rawValue: try row.decode(String.self, 2)) ?? .aborted,
                       maxFileBytes: try row.decode(Int.self, 3), maxAttempts: try row.decode(Int.self, 4),
                       messageKey: try row.decode([UInt8]?.self, 5))
        }
    }

    /// Those of `paths` in `run`'s plan: one primary-key probe per path (see `BatchWriter.write`).
    /// Only for messages without a valid signature: a signed one was planned (`PathMessage`).
    func planned(_ paths: [String], run: Int64, on c: PostgresConnection) async throws -> Set<ExactPath> {
        Set(try await c.query("""
            SELECT q.path FROM unnest(\(paths)::text[]) AS q(path)
             WHERE (SELECT true FROM \(unescaped: schema.plannedPaths) p WHERE p.run_id = \(run) AND p.path = q.path)
            """).map { ExactPath(try $0.decode(String.self, 0)) })
    }

    /// Brings the planner's statistics of `planned_paths` up to date (a sample, not a scan): call
    /// once a run's plan is stored, before its pages are read.
    func analyzePlans(on c: PostgresConnection) async throws {
        try await c.execute("ANALYZE \(unescaped: schema.plannedPaths)")
    }

    public func databaseNow(on c: PostgresConnection) async throws -> Date {
        try await c.query("SELECT now()")[0].decode(Date.self, 0)
    }

    static func run(_ row: PostgresRow) throws -> RunRecord {
        RunRecord(id: try row.decode(Int64.self, 0), sourceID: try row.decode(String.self, 1),
                  mode: SourceMode(rawValue: try row.decode(String.self, 2)) ?? .directory, pin: try row.decode(String?.self, 3),
                  state: RunState(rawValue: try row.decode(String.self, 4)) ?? .aborted, planned: try row.decode(Int.self, 5),
                  messageKey: try row.decode([UInt8]?.self, 6))
    }

    /// 32 bytes from the system's cryptographic generator (`getrandom`), a run's message key.
    static func newMessageKey() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    // MARK: git mode

    /// Stores a new git run: the plan's paths, and the rows of its removals (excluded, hidden or
    /// ignored now), deleted and checkpointed `deleted`. Call inside the lease's fenced transaction,
    /// after the source adopted git mode.
    public func createRun(_ plan: GitPlan, sourceID: String, token: Int64, maxFileBytes: Int, maxAttempts: Int,
                          on c: PostgresConnection) async throws -> RunRecord {
        var removed: [String] = []
        if !plan.removals.isEmpty {
            removed = try await c.query("""
                DELETE FROM \(unescaped: schema.documents) WHERE source_id = \(sourceID) AND path = ANY(\(plan.removals)::text[])
                RETURNING path
                """).map { try $0.decode(String.self, 0) }
            try await FailureStore(schema: schema).delete(plan.removals, sourceID: sourceID, on: c)
        }
        let run = try await createRun(sourceID: sourceID, mode: .git, pin: plan.pin, token: token,
                                            plan: plan.paths + removed, maxFileBytes: maxFileBytes,
                                            maxAttempts: maxAttempts, on: c)
        try await CheckpointStore(schema: schema).append(paths: removed, outcome: .deleted, run: run.id, on: c)
        if !plan.worktree.isEmpty {
            try await c.copyFrom("COPY \(unescaped: schema.gitWorktreePaths) (run_id, path) FROM STDIN") { writer in
                for path in plan.worktree { try await writer.writeRow(run.id, path) }
            }
        }
        return run
    }

    /// The worktree paths of the source's last completed run.
    public func lastWorktreePaths(sourceID: String, on c: PostgresConnection) async throws -> [String] {
        try await c.query("""
            SELECT w.path FROM \(unescaped: schema.gitWorktreePaths) w
             WHERE w.run_id = (SELECT max(id) FROM \(unescaped: schema.runs)
                                WHERE source_id = \(sourceID) AND state IN (\(RunState.completed.rawValue), \(RunState.completedWithFailures.rawValue)))
            """).map { try $0.decode(String.self, 0) }
    }

    /// Ends a run that can no longer complete (its pin vanished in a history rewrite). Fenced.
    public func abandon(run: Int64, on c: PostgresConnection) async throws {
        try await c.execute("""
            UPDATE \(unescaped: schema.runs) SET state = \(RunState.aborted.rawValue), finished_at = now()
             WHERE id = \(run) AND state = \(RunState.running.rawValue)
            """)
    }
}
