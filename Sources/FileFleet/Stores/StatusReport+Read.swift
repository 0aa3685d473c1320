public import FleetPostgres
import Foundation

/// The SQL behind `filefleet status` and the status page: one read of every table, per source.
extension StatusReport {
    public static func read(schema: Schema, sourceID: String?, on c: PostgresConnection) async throws -> StatusReport {
        var sources: [Source] = []
        for row in try await c.query("""
            SELECT id, root, mode, bookmark FROM \(unescaped: schema.sources)
             WHERE \(sourceID)::text IS NULL OR id = \(sourceID) ORDER BY id
            """) {
            let id = try row.decode(String.self, 0)
            sources.append(Source(id: id, root: try row.decode(String.self, 1), mode: try row.decode(String.self, 2),
                                  bookmark: try row.decode(String?.self, 3), run: try await run(schema, id, c),
                                  lease: try await lease(schema, id, c), failures: try await failures(schema, id, c)))
        }
        let workers = try await c.query("""
            SELECT id, state, imported, extract(epoch FROM now() - heartbeat_at)::float8,
                   imported / GREATEST(1, extract(epoch FROM heartbeat_at - started_at))::float8
              FROM \(unescaped: schema.workers)
             WHERE state <> 'stopped' AND heartbeat_at > now() - make_interval(secs => \(liveWorkerWindow))
             ORDER BY id
            """).map { row in
            Worker(id: try row.decode(String.self, 0), state: try row.decode(String.self, 1),
                   imported: try row.decode(Int.self, 2), heartbeat_age_seconds: try row.decode(Double.self, 3),
                   rate: try row.decode(Double.self, 4))
        }
        return StatusReport(sources: sources, workers: workers, runs: try await history(schema, sourceID, c))
    }

    /// The newest runs with their counts (one index range of checkpoints each). Duration ends at
    /// `finished_at`, or now for a run still open.
    static func history(_ schema: Schema, _ sourceID: String?, _ c: PostgresConnection) async throws -> [PastRun] {
        try await c.query("""
            SELECT r.id, r.source_id, r.state, r.planned, k.done, k.failed,
                   extract(epoch FROM coalesce(r.finished_at, now()) - r.started_at)::float8
              FROM \(unescaped: schema.runs) r
             CROSS JOIN LATERAL (SELECT count(*) AS done, count(*) FILTER (WHERE outcome = 'failed') AS failed
                                   FROM \(unescaped: schema.checkpoints) WHERE run_id = r.id) k
             WHERE \(sourceID)::text IS NULL OR r.source_id = \(sourceID)
             ORDER BY r.id DESC LIMIT \(historyLength)
            """).map { row in
            let done = try row.decode(Int.self, 4), seconds = try row.decode(Double.self, 6)
            return PastRun(id: try row.decode(Int64.self, 0), source_id: try row.decode(String.self, 1),
                           state: try row.decode(String.self, 2), planned: try row.decode(Int.self, 3), done: done,
                           failed: try row.decode(Int.self, 5), seconds: seconds,
                           files_per_second: seconds > 0 ? Double(done) / seconds : 0)
        }
    }

    /// Files per second of `run` over its life, in up to `buckets` equal slices (0.1 s at least,
    /// and at least two: a run imported in one transaction still draws, its checkpoints in the
    /// last slice) from its start to its last checkpoint: computed from the checkpoints' times, so
    /// it is the same whichever process draws it.
    public static func throughput(_ schema: Schema, run: Int64, buckets: Int = 60,
                                  on c: PostgresConnection) async throws -> (slice: Double, rates: [Double]) {
        let length = try await c.query("""
            SELECT extract(epoch FROM max(k.done_at) - min(r.started_at))::float8
              FROM \(unescaped: schema.checkpoints) k JOIN \(unescaped: schema.runs) r ON r.id = k.run_id
             WHERE k.run_id = \(run)
            """).first.flatMap { try $0.decode(Double?.self, 0) } ?? 0
        guard length > 0 else { return (0, []) }
        let slice = max(length / Double(buckets), min(0.1, length / 2))
        let count = min(buckets, max(2, Int((length / slice).rounded(.up))))
        var counts = [Int](repeating: 0, count: count)
        for row in try await c.query("""
            SELECT LEAST(\(count) - 1, GREATEST(0, floor(extract(epoch FROM k.done_at - r.started_at) / \(slice))::int)), count(*)
              FROM \(unescaped: schema.checkpoints) k JOIN \(unescaped: schema.runs) r ON r.id = k.run_id
             WHERE k.run_id = \(run) GROUP BY 1
            """) {
            counts[try row.decode(Int.self, 0)] = try row.decode(Int.self, 1)
        }
        return (slice, counts.map { Double($0) / slice })
    }

    static func run(_ schema: Schema, _ sourceID: String, _ c: PostgresConnection) async throws -> Run? {
        guard let row = try await c.query("""
            SELECT r.id, r.state, r.planned,
                   (SELECT count(*) FROM \(unescaped: schema.checkpoints) k WHERE k.run_id = r.id),
                   (SELECT count(*) FROM \(unescaped: schema.checkpoints) k WHERE k.run_id = r.id AND k.outcome = 'failed'),
                   to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   to_char(r.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   (SELECT count(*) FROM \(unescaped: schema.checkpoints) k
                     WHERE k.run_id = r.id AND k.done_at > now() - interval '60 seconds')::float8
                     / GREATEST(1, LEAST(60, extract(epoch FROM now() - r.started_at)))::float8,
                   r.stop_reason, r.stop_error, to_char(r.stopped_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
              FROM \(unescaped: schema.runs) r WHERE r.source_id = \(sourceID) ORDER BY r.id DESC LIMIT 1
            """).first else { return nil }
        let planned = try row.decode(Int.self, 2), done = try row.decode(Int.self, 3), rate = try row.decode(Double.self, 7)
        let state = try row.decode(String.self, 1)
        return Run(id: try row.decode(Int64.self, 0), state: state, planned: planned, done: done,
                   failed: try row.decode(Int.self, 4), started_at: try row.decode(String.self, 5),
                   finished_at: try row.decode(String?.self, 6), rate: rate,
                   eta_seconds: state == "running" && rate > 0 ? Double(planned - done) / rate : nil,
                   stopped: try row.decode(String?.self, 8).map {
                       Stop(reason: $0, error: try row.decode(String?.self, 9), at: try row.decode(String?.self, 10) ?? "")
                   })
    }

    static func lease(_ schema: Schema, _ sourceID: String, _ c: PostgresConnection) async throws -> Lease? {
        try await LeaseStore(schema: schema).info("sync:\(sourceID)", on: c).map {
            Lease(holder: $0.holder, token: $0.token, heartbeat_age_seconds: $0.heartbeatAge, expires_in_seconds: $0.expiresIn)
        }
    }

    static func failures(_ schema: Schema, _ sourceID: String, _ c: PostgresConnection) async throws -> [Failure] {
        try await c.query("""
            SELECT path, reason, message, attempts, to_char(last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
              FROM \(unescaped: schema.failures) WHERE source_id = \(sourceID) ORDER BY last_seen DESC, path LIMIT 10
            """).map { row in
            Failure(path: try row.decode(String.self, 0), reason: try row.decode(String.self, 1),
                    message: try row.decode(String.self, 2), attempts: try row.decode(Int.self, 3),
                    last_seen: try row.decode(String.self, 4))
        }
    }
}
