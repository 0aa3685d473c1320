import FleetPostgres

/// Failures the coordinator finds itself, while planning: names that are not valid UTF-8
/// (SPEC §5, §6.8). No worker can import them, so they are never published: each is planned and
/// checkpointed `failed` in the plan's own fenced transaction, which counts it in the run's
/// summary (exit 3), and upserted into `failures`, where `filefleet status` shows it.
struct Quarantine: Sendable {
    let schema: Schema

    /// Call inside the lease's fenced transaction that created `run`, with the escaped names it planned.
    /// Quarantined names no longer seen (renamed or deleted) leave `failures`.
    func recordInvalidNames(_ names: [String], run: Int64, sourceID: String, on c: PostgresConnection) async throws {
        try await c.execute("""
            DELETE FROM \(unescaped: schema.failures)
             WHERE source_id = \(sourceID) AND reason = \(InvalidName.reason) AND path <> ALL(\(names)::text[])
            """)
        guard !names.isEmpty else { return }
        try await c.execute("""
            INSERT INTO \(unescaped: schema.failures) AS f (source_id, path, reason, message, attempts, run_id)
            SELECT \(sourceID), p, \(InvalidName.reason), \(InvalidName.message), 1, \(run)
              FROM unnest(\(names)::text[]) AS t(p)
            ON CONFLICT (source_id, path) DO UPDATE
               SET reason = excluded.reason, message = excluded.message, run_id = excluded.run_id,
                   attempts = f.attempts + 1, last_seen = now()
            """)
        try await c.execute("""
            INSERT INTO \(unescaped: schema.checkpoints) (run_id, path, outcome, worker)
            SELECT \(run), p, 'failed', 'coordinator' FROM unnest(\(names)::text[]) AS t(p)
            ON CONFLICT DO NOTHING
            """)
    }
}
