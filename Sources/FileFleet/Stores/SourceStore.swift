public import FleetPostgres

/// The SQL of `sources`: each source id is bound to one root; git sources keep a bookmark.
public struct SourceStore: Sendable {
    public let schema: Schema

    public init(schema: Schema) {
        self.schema = schema
    }

    /// Binds `id` to `root` at its first sync; another root for the same id is a usage error.
    public func register(id: String, root: String, mode: SourceMode, on c: PostgresConnection) async throws -> SourceRecord {
        try await c.execute("""
            INSERT INTO \(unescaped: schema.sources) (id, root, mode) VALUES (\(id), \(root), \(mode.rawValue))
            ON CONFLICT (id) DO NOTHING
            """)
        let record = try await source(id, on: c)!
        guard record.root == root else {
            throw UsageError("--source-id \(id) is bound to \(record.root), not \(root): choose another --source-id")
        }
        return record
    }

    public func source(_ id: String, on c: PostgresConnection) async throws -> SourceRecord? {
        try await c.query("SELECT root, mode, bookmark FROM \(unescaped: schema.sources) WHERE id = \(id)").first.map { row in
            SourceRecord(id: id, root: try row.decode(String.self, 0),
                         mode: SourceMode(rawValue: try row.decode(String.self, 1)) ?? .directory,
                         bookmark: try row.decode(String?.self, 2))
        }
    }

    /// Records the mode a new run of the source uses. A source that changes mode (a directory that
    /// became a git work tree, or the reverse) loses its bookmark: its next git run lists the full
    /// tree and reconciles. Call inside the lease's fenced transaction.
    func adoptMode(_ mode: SourceMode, sourceID: String, on c: PostgresConnection) async throws {
        try await c.execute("""
            UPDATE \(unescaped: schema.sources)
               SET mode = \(mode.rawValue), bookmark = CASE WHEN mode = \(mode.rawValue) THEN bookmark END
             WHERE id = \(sourceID) AND mode IS DISTINCT FROM \(mode.rawValue)
            """)
    }

    /// Moves a git source's bookmark to the pin of its completed run. Call inside the fenced finalize.
    func advanceBookmark(sourceID: String, to pin: String?, on c: PostgresConnection) async throws {
        try await c.execute("UPDATE \(unescaped: schema.sources) SET bookmark = \(pin) WHERE id = \(sourceID)")
    }
}
