/// One schema change. Versions order the migrations; an applied version never runs again.
public struct Migration: Sendable, Hashable {
    public var version: Int
    public var name: String
    /// One or more statements, run in one transaction with `search_path` set to the schema.
    /// Must not contain its own BEGIN/COMMIT.
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// Applies migrations in order into `schema`, recording them in `schema.table`. Concurrent
/// migrators (other processes too) serialize on a session advisory lock derived from the schema.
public struct Migrator: Sendable {
    public var schema: String
    public var table: String
    public var migrations: [Migration]

    public init(schema: String = "public", table: String = "schema_migrations", migrations: [Migration]) {
        precondition(Set(migrations.map(\.version)).count == migrations.count, "duplicate migration versions")
        self.schema = schema
        self.table = table
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// The advisory lock key: FNV-1a of the schema name, so different schemas migrate in parallel.
    public var lockKey: Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "filefleet.migrations:\(schema)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }

    /// Applies what is missing and returns the versions applied by this call.
    @discardableResult
    public func migrate(on connection: PostgresConnection) async throws -> [Int] {
        let key = lockKey
        try await connection.execute("SELECT pg_advisory_lock(\(key))")
        do {
            let applied = try await applyPending(on: connection)
            try await connection.execute("SELECT pg_advisory_unlock(\(key))")
            return applied
        } catch {
            // The lock is per session: unlock, or drop the session if even that fails.
            if (try? await connection.execute("SELECT pg_advisory_unlock(\(key))")) == nil { await connection.close() }
            throw error
        }
    }

    /// Applies migrations through a pooled connection.
    @discardableResult
    public func migrate(on pool: PostgresPool) async throws -> [Int] {
        try await pool.withConnection { try await migrate(on: $0) }
    }

    private func applyPending(on connection: PostgresConnection) async throws -> [Int] {
        let schemaName = quoteIdentifier(schema)
        let tableName = "\(schemaName).\(quoteIdentifier(table))"
        try await connection.executeScript("""
            CREATE SCHEMA IF NOT EXISTS \(schemaName);
            CREATE TABLE IF NOT EXISTS \(tableName) (
                version bigint PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        let done = Set(try await connection.query("SELECT version FROM \(unescaped: tableName)").map {
            try $0.decode(Int.self, 0)
        })
        var applied: [Int] = []
        for migration in migrations where !done.contains(migration.version) {
            try await connection.withTransaction { conn in
                try await conn.execute("SET LOCAL search_path TO \(unescaped: schemaName), public")
                try await conn.executeScript(migration.sql)
                try await conn.execute(
                    "INSERT INTO \(unescaped: tableName) (version, name) VALUES (\(migration.version), \(migration.name))")
            }
            applied.append(migration.version)
        }
        return applied
    }
}
