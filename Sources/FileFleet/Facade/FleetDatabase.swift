import FleetPostgres

/// What the operator commands (`status`, `lease`, `migrate`) do with the database: each opens one
/// connection of its own, applies the schema where it reads, and closes it. The CLI needs nothing
/// of the Postgres wrapper.
public struct FleetDatabase: Sendable {
    public let postgresURL: String
    public let schema: Schema

    public init(postgresURL: String, schema: Schema = Schema()) {
        self.postgresURL = postgresURL
        self.schema = schema
    }

    /// Applies what is missing of the schema; returns the versions applied.
    @discardableResult
    public func migrate() async throws -> [Int] {
        try await withPool { pool in try await schema.migrate(pool) }
    }

    /// Runs, progress, leases, live workers and failures, per source (or of one source).
    public func status(sourceID: String?) async throws -> StatusReport {
        try await PostgresConnection.withConnection(postgresURL) { c in
            try await StatusReport.read(schema: schema, sourceID: sourceID, on: c)
        }
    }

    public func leases() async throws -> [LeaseInfo] {
        try await withLeaseStore { store, c in try await store.list(on: c) }
    }

    /// Frees the lease whoever holds it and bumps its token (the old holder is fenced).
    /// Returns the lease as it was, or nil if there is none of that name.
    public func forceRelease(_ name: String) async throws -> LeaseInfo? {
        try await withLeaseStore { store, c in try await store.forceRelease(name, on: c) }
    }

    private func withLeaseStore<T: Sendable>(_ body: @Sendable (LeaseStore, PostgresConnection) async throws -> T) async throws -> T {
        try await withPool { pool in
            try await schema.migrate(pool)
            return try await pool.withConnection { c in try await body(LeaseStore(schema: schema), c) }
        }
    }

    private func withPool<T: Sendable>(_ body: (PostgresPool) async throws -> T) async throws -> T {
        let pool = PostgresPool(url: postgresURL, maxConnections: 1)
        do {
            let result = try await body(pool)
            await pool.close()
            return result
        } catch {
            await pool.close()
            throw error
        }
    }
}
