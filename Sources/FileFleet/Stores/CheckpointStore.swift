public import FleetPostgres
public import Foundation

/// The SQL of `checkpoints`, one row per path of a run that is done (SPEC §5, §6.1). The `append`
/// methods are the only writers of checkpoint rows; callers run them inside the transaction that
/// did the path's work, so the work and its checkpoint commit together.
public struct CheckpointStore: Sendable {
    public let schema: Schema

    public init(schema: Schema) {
        self.schema = schema
    }

    /// What `append` does with a path that already has a checkpoint of the run.
    enum Existing {
        /// Plain COPY, the fastest write: a path checkpointed meanwhile raises a unique violation,
        /// and the caller writes its batch again with `.skip`.
        case fail
        /// Keeps the first checkpoint (`ON CONFLICT DO NOTHING`).
        case skip
    }

    /// Appends one checkpoint per path, written by `worker`.
    func append(_ rows: [(path: String, outcome: Outcome)], run: Int64, worker: String, existing: Existing,
                on c: PostgresConnection) async throws {
        guard !rows.isEmpty else { return }
        switch existing {
        case .fail:
            try await c.copyBinary("COPY \(unescaped: schema.checkpoints) (run_id, path, outcome, worker) FROM STDIN (FORMAT binary)",
                                   rows: rows.map { path, outcome in
                                       var row = PostgresBinaryRow(fields: 4, capacity: 40 + path.utf8.count + worker.utf8.count)
                                       row.bigint(run)
                                       row.text(path)
                                       row.text(outcome.rawValue)
                                       row.text(worker)
                                       return row
                                   })
        case .skip:
            try await c.execute("""
                INSERT INTO \(unescaped: schema.checkpoints) (run_id, path, outcome, worker)
                SELECT \(run), p, o, \(worker)
                  FROM unnest(\(rows.map(\.path))::text[], \(rows.map(\.outcome.rawValue))::text[]) AS t(p, o)
                ON CONFLICT DO NOTHING
                """)
        }
    }

    /// Checkpoints the coordinator writes while it stores a plan: paths it settled itself
    /// (quarantined names, rows it removed), each with the same outcome.
    func append(paths: [String], outcome: Outcome, run: Int64, on c: PostgresConnection) async throws {
        try await append(paths.map { ($0, outcome) }, run: run, worker: Self.coordinator, existing: .skip, on: c)
    }

    /// The paths of a staged directory plan whose rows the coordinator removed (`removed`), `deleted`.
    func append(removedIn plan: DirectoryPlan, run: Int64, on c: PostgresConnection) async throws {
        try await c.execute("""
            INSERT INTO \(unescaped: schema.checkpoints) (run_id, path, outcome, worker)
            SELECT \(run), path, \(Outcome.deleted.rawValue), \(Self.coordinator)
              FROM \(unescaped: DirectoryPlan.table) WHERE action = 'removed'
            """)
    }

    /// The `worker` of the checkpoints a coordinator writes.
    static let coordinator = "coordinator"

    public func count(run: Int64, on c: PostgresConnection) async throws -> Int {
        try await c.query("SELECT count(*) FROM \(unescaped: schema.checkpoints) WHERE run_id = \(run)")[0].decode(Int.self, 0)
    }

    /// Checkpoints written before `instant` (database time): work banked by earlier invocations.
    public func count(run: Int64, before instant: Date, on c: PostgresConnection) async throws -> Int {
        try await c.query("""
            SELECT count(*) FROM \(unescaped: schema.checkpoints) WHERE run_id = \(run) AND done_at < \(instant)
            """)[0].decode(Int.self, 0)
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
            counts[Outcome(rawValue: try row.decode(String.self, 0)) ?? .failed] = try row.decode(Int.self, 1)
        }
        return counts
    }

    /// The banked paths of `run` from `first` through `last` (a range scan of the primary key).
    func bankedRangeQuery(run: Int64, from first: String, through last: String) -> PostgresQuery {
        """
        SELECT path FROM \(unescaped: schema.checkpoints)
         WHERE run_id = \(run) AND path >= \(first) AND path <= \(last)
        """
    }
}
