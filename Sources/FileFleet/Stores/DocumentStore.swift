import FleetPostgres

/// Reads of `documents` that planning needs (the writes are a batch's: `BatchWriter`).
struct DocumentStore: Sendable {
    let schema: Schema

    /// Size and mtime (µs) of every stored document of the source.
    func sizesAndMtimes(sourceID: String, on c: PostgresConnection) async throws -> [ExactPath: (size: Int64, mtime: Int64)] {
        try Self.sizesAndMtimes(await c.query("""
            SELECT path, size, (extract(epoch FROM mtime) * 1000000)::bigint
              FROM \(unescaped: schema.documents) WHERE source_id = \(sourceID)
            """))
    }

    /// Size and mtime (µs) of those of `paths` that have a stored document.
    func sizesAndMtimes(of paths: [String], sourceID: String, on c: PostgresConnection) async throws
        -> [ExactPath: (size: Int64, mtime: Int64)] {
        try Self.sizesAndMtimes(await c.query("""
            SELECT d.path, d.size, (extract(epoch FROM d.mtime) * 1000000)::bigint
              FROM unnest(\(paths)::text[]) AS q(path)
              JOIN \(unescaped: schema.documents) d ON d.source_id = \(sourceID) AND d.path = q.path
            """))
    }

    /// Those of `paths` that have a stored document.
    func stored(_ paths: [String], sourceID: String, on c: PostgresConnection) async throws -> [String] {
        guard !paths.isEmpty else { return [] }
        return try await c.query("""
            SELECT path FROM \(unescaped: schema.documents) WHERE source_id = \(sourceID) AND path = ANY(\(paths)::text[])
            """).map { try $0.decode(String.self, 0) }
    }

    private static func sizesAndMtimes(_ rows: some Sequence<PostgresRow>) throws -> [ExactPath: (size: Int64, mtime: Int64)] {
        var stored: [ExactPath: (size: Int64, mtime: Int64)] = [:]
        for row in rows {
            stored[ExactPath(try row.decode(String.self, 0))] = (try row.decode(Int64.self, 1), try row.decode(Int64.self, 2))
        }
        return stored
    }
}
