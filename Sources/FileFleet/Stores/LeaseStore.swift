public import FleetPostgres

/// The SQL of leases, one statement each. Knows nothing of heartbeat timers (see `Lease`).
public struct LeaseStore: Sendable {
    public let schema: Schema

    public init(schema: Schema) {
        self.schema = schema
    }

    /// Takes the lease if it is free, released, or both expired and silent for the grace window
    /// (the takeover rule, as one predicate). Every acquisition increments the token.
    /// `deadHolder`: a holder known to be dead (see `Lease.isDeadLocalHolder`) is taken over at
    /// once — only if it still holds the lease, so two contenders cannot both win.
    public func acquire(_ name: String, holder: String, timing: LeaseTiming, deadHolder: String? = nil,
                        on connection: PostgresConnection) async throws -> Int64 {
        let rows = try await connection.query("""
            INSERT INTO \(unescaped: schema.leases) AS l (name, holder, token, heartbeat_at, expires_at, acquired_at)
            VALUES (\(name), \(holder), 1, now(), now() + make_interval(secs => \(timing.ttl.seconds)), now())
            ON CONFLICT (name) DO UPDATE
               SET holder = excluded.holder, token = l.token + 1, heartbeat_at = now(),
                   expires_at = excluded.expires_at, acquired_at = now()
             WHERE l.holder IS NULL
                OR l.holder = \(deadHolder)
                OR (l.expires_at < now()
                    AND (l.heartbeat_at IS NULL
                         OR l.heartbeat_at < now() - make_interval(secs => \(timing.grace.seconds))))
            RETURNING token
            """)
        if let row = rows.first { return try row.decode(Int64.self, 0) }
        throw LeaseBusy(lease: try await info(name, on: connection)
                        ?? LeaseInfo(name: name, holder: nil, token: 0, heartbeatAge: nil, expiresIn: nil))
    }

    /// Extends the lease; false when it is no longer this holder's (taken over or force-released).
    /// It must change no key of the row (name, token): then it does not wait for a fenced transaction.
    public func heartbeat(_ name: String, holder: String, token: Int64, timing: LeaseTiming,
                          on connection: PostgresConnection) async throws -> Bool {
        try await connection.execute("""
            UPDATE \(unescaped: schema.leases)
               SET heartbeat_at = now(), expires_at = now() + make_interval(secs => \(timing.ttl.seconds))
             WHERE name = \(name) AND holder = \(holder) AND token = \(token)
            """) == 1
    }

    /// Gives the lease up, so that the next contender takes it at once. A no-op if it was lost.
    /// The token stays: this does not wait for a fenced transaction, the next acquisition does.
    public func release(_ name: String, holder: String, token: Int64, on connection: PostgresConnection) async throws {
        try await connection.execute("""
            UPDATE \(unescaped: schema.leases) SET holder = NULL, heartbeat_at = NULL, expires_at = now()
             WHERE name = \(name) AND holder = \(holder) AND token = \(token)
            """)
    }

    /// Operator release: frees the lease whoever holds it and bumps the token, so the old holder's
    /// next fenced write and heartbeat fail. Returns the lease as it was, or nil if there is none.
    public func forceRelease(_ name: String, on connection: PostgresConnection) async throws -> LeaseInfo? {
        let before = try await info(name, on: connection)
        try await connection.execute("""
            UPDATE \(unescaped: schema.leases)
               SET holder = NULL, token = token + 1, heartbeat_at = NULL, expires_at = now()
             WHERE name = \(name)
            """)
        return before
    }

    /// Runs `body` in a transaction that first checks, with a key-share lock on the lease row, that
    /// `token` is still current: a superseded holder writes nothing, and a takeover or a forced
    /// release waits for the transaction to commit (they change the token, a key of the row since
    /// migration 4, so they need FOR UPDATE). The heartbeat changes no key: it does not wait, however
    /// long `body` runs. With `idleTimeout`, the server ends the transaction (and its lock) if the
    /// holder goes quiet in it.
    public func fenced<T>(_ name: String, token: Int64, idleTimeout: Duration? = nil, on connection: PostgresConnection,
                          _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await connection.withTransaction { connection in
            if let idleTimeout {
                let ms = max(1, Int64(idleTimeout.seconds * 1000))
                try await connection.execute("SET LOCAL idle_in_transaction_session_timeout = \(unescaped: String(ms))")
            }
            try await checkCurrent(name, token: token, on: connection)
            return try await body(connection)
        }
    }

    /// Inside the caller's transaction: throws `LeaseLost` unless `token` is still current, and
    /// keeps it current until the transaction ends (a takeover waits for it; a heartbeat does not).
    public func checkCurrent(_ name: String, token: Int64, on connection: PostgresConnection) async throws {
        let current = try await connection.query("""
            SELECT 1 FROM \(unescaped: schema.leases)
             WHERE name = \(name) AND token = \(token) AND holder IS NOT NULL FOR KEY SHARE
            """)
        guard !current.isEmpty else { throw LeaseLost(name: name, token: token) }
    }

    public func info(_ name: String, on connection: PostgresConnection) async throws -> LeaseInfo? {
        try await list(on: connection).first { $0.name == name }
    }

    public func list(on connection: PostgresConnection) async throws -> [LeaseInfo] {
        try await connection.query("""
            SELECT name, holder, token,
                   extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age,
                   extract(epoch FROM expires_at - now())::float8 AS expires_in
              FROM \(unescaped: schema.leases) ORDER BY name
            """).map { row in
            LeaseInfo(name: try row.decode(String.self, 0), holder: try row.decode(String?.self, 1),
                      token: try row.decode(Int64.self, 2), heartbeatAge: try row.decode(Double?.self, 3),
                      expiresIn: try row.decode(Double?.self, 4))
        }
    }
}
