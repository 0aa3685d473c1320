import FleetPostgres

/// The SQL of `filefleet.workers`: each worker process registers, heart-beats with its count and
/// readiness, and marks itself stopped; `status` and the coordinator count the live ones.
struct WorkerRegistry: Sendable {
    let schema: Schema

    func register(_ id: String, host: String, pid: Int, on c: PostgresConnection) async throws {
        try await c.execute("""
            INSERT INTO \(unescaped: schema.workers) (id, host, pid, state) VALUES (\(id), \(host), \(pid), 'running')
            ON CONFLICT (id) DO UPDATE SET state = 'running', heartbeat_at = now()
            """)
    }

    /// `progress_at` moves only when the count of files done moved since the last beat.
    func heartbeat(_ id: String, done: Int, ready: Bool, on c: PostgresConnection) async throws {
        try await c.execute("""
            UPDATE \(unescaped: schema.workers)
               SET heartbeat_at = now(), imported = \(done), state = \(ready ? "running" : "paused"),
                   progress_at = CASE WHEN imported <> \(done) THEN now() ELSE progress_at END
             WHERE id = \(id)
            """)
    }

    func markStopped(_ id: String, on c: PostgresConnection) async throws {
        try await c.execute("UPDATE \(unescaped: schema.workers) SET state = 'stopped', heartbeat_at = now() WHERE id = \(id)")
    }

    /// Whether a worker other than `id` committed a batch within the live-worker window.
    func othersMakeProgress(besides id: String, on c: PostgresConnection) async throws -> Bool {
        try await c.query("""
            SELECT EXISTS (SELECT 1 FROM \(unescaped: schema.workers)
                            WHERE id <> \(id) AND state = 'running'
                              AND progress_at > now() - make_interval(secs => \(StatusReport.liveWorkerWindow)))
            """)[0].decode(Bool.self, 0)
    }

    /// Workers that heart-beat recently and have not stopped (as `filefleet status` counts them),
    /// but for those of process `pid` of this host, if given.
    func liveWorkers(besides pid: Int32? = nil, on c: PostgresConnection) async throws -> Int {
        try await c.query("""
            SELECT count(*) FROM \(unescaped: schema.workers)
             WHERE state <> 'stopped' AND heartbeat_at > now() - make_interval(secs => \(StatusReport.liveWorkerWindow))
               AND (\(pid.map { Int($0) })::bigint IS NULL OR host <> \(System.hostName) OR pid <> \(pid.map { Int($0) })::bigint)
            """)[0].decode(Int.self, 0)
    }
}
