import FleetPostgres

/// The SQL of `failures`: one row per quarantined path of a source, with its reason, the newest
/// message and the attempts so far (SPEC §5, §6.8). A path that imports, or leaves the source,
/// leaves it too.
struct FailureStore: Sendable {
    let schema: Schema

    /// Upserts one row per failure, adding its attempts to those recorded before.
    func record(_ failures: [(path: String, reason: String, message: String, attempts: Int)], run: Int64, sourceID: String,
                on c: PostgresConnection) async throws {
        guard !failures.isEmpty else { return }
        try await c.execute("""
            INSERT INTO \(unescaped: schema.failures) AS f (source_id, path, reason, message, attempts, run_id)
            SELECT \(sourceID), p, r, m, a::int, \(run)
              FROM unnest(\(failures.map(\.path))::text[], \(failures.map(\.reason))::text[],
                          \(failures.map(\.message))::text[], \(failures.map { String($0.attempts) })::text[]) AS t(p, r, m, a)
            ON CONFLICT (source_id, path) DO UPDATE
               SET reason = excluded.reason, message = excluded.message, run_id = excluded.run_id,
                   attempts = f.attempts + excluded.attempts, last_seen = now()
            """)
    }

    /// The rows of `paths`, whatever their reason (the paths imported, or left the source).
    func delete(_ paths: [String], sourceID: String, on c: PostgresConnection) async throws {
        guard !paths.isEmpty else { return }
        try await c.execute("""
            DELETE FROM \(unescaped: schema.failures) WHERE source_id = \(sourceID) AND path = ANY(\(paths)::text[])
            """)
    }

    /// The rows of `paths` quarantined for `reason`.
    func delete(_ paths: [String], reason: String, sourceID: String, on c: PostgresConnection) async throws {
        guard !paths.isEmpty else { return }
        try await c.execute("""
            DELETE FROM \(unescaped: schema.failures)
             WHERE source_id = \(sourceID) AND reason = \(reason) AND path = ANY(\(paths)::text[])
            """)
    }

    /// The rows of `reason` but those of `kept` (a listing that sees every such path no longer sees them).
    func delete(reason: String, except kept: [String], sourceID: String, on c: PostgresConnection) async throws {
        try await c.execute("""
            DELETE FROM \(unescaped: schema.failures)
             WHERE source_id = \(sourceID) AND reason = \(reason) AND path <> ALL(\(kept)::text[])
            """)
    }

    /// The rows of the paths a staged directory plan removed.
    func delete(removedIn plan: DirectoryPlan, sourceID: String, on c: PostgresConnection) async throws {
        try await c.execute("""
            DELETE FROM \(unescaped: schema.failures) f USING \(unescaped: DirectoryPlan.table) p
             WHERE p.action = 'removed' AND f.source_id = \(sourceID) AND f.path = p.path
            """)
    }

    /// Quarantined paths a new plan takes again: all but stand-in keys and escaped names, which
    /// are not paths to import.
    func retryablePaths(sourceID: String, on c: PostgresConnection) async throws -> [String] {
        try await c.query("""
            SELECT path FROM \(unescaped: schema.failures)
             WHERE source_id = \(sourceID) AND reason <> \(LongPath.reason) AND reason <> \(InvalidName.reason)
            """).map { try $0.decode(String.self, 0) }
    }
}
