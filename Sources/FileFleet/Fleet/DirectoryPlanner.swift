public import FleetPostgres
import Foundation

/// What a directory-mode run must do (SPEC §6.3): files that are new or changed, stored documents
/// whose file is gone, and paths that failed before. Size and mtime are the fast path; when they
/// differ the file is hashed, and an equal hash only refreshes the stored mtime.
public struct DirectoryPlan: Sendable {
    public var paths: [String] = []
    /// Unchanged content whose stored mtime must be refreshed: (path, mtime µs).
    public var touched: [(String, Int64)] = []
    public var listed = 0
    /// Stored documents of the source, and how many of them the listing no longer has.
    public var stored = 0, deletions = 0
    /// Names that are not valid UTF-8, escaped (`InvalidName`): quarantined by the coordinator.
    public var invalidNames: [String] = []
    /// Stand-in keys of paths too long to store (`LongPath`): quarantined by the coordinator.
    public var longPaths: [String] = []
}

public struct DirectoryPlanner: Sendable {
    public let schema: Schema

    public init(schema: Schema) {
        self.schema = schema
    }

    /// Plans a run. `large` is called once, from the walk, as soon as the plan holds more than
    /// `largeAbove` paths: the caller starts what a large run needs while the walk goes on.
    public func plan(sourceID: String, root: String, filter: PathFilter, largeAbove: Int = .max,
                     large: @escaping @Sendable () -> Void = {}, on c: PostgresConnection) async throws -> DirectoryPlan {
        // The stored side, held once: path → (size, mtime µs, sha256).
        var stored: [ExactPath: (Int64, Int64, String)] = [:]
        for row in try await c.query("""
            SELECT path, size, (extract(epoch FROM mtime) * 1000000)::bigint, sha256
              FROM \(unescaped: schema.documents) WHERE source_id = \(sourceID)
            """) {
            stored[ExactPath(try row.decode(String.self, 0))] = (try row.decode(Int64.self, 1), try row.decode(Int64.self, 2),
                                                      try row.decode(String.self, 3))
        }
        // Invalid names and long paths are found again by the walk; they are not paths a worker could read.
        let failed = try await c.query("""
            SELECT path FROM \(unescaped: schema.failures)
             WHERE source_id = \(sourceID) AND reason <> ALL(\([InvalidName.reason, LongPath.reason])::text[])
            """).map { try $0.decode(String.self, 0) }
        let known = stored
        var plan = try await runBlocking { () throws -> DirectoryPlan in
            var plan = DirectoryPlan()
            var seen = Set<ExactPath>()
            var announced = false
            try DirectoryWalker(root: root, filter: filter).walk(file: { file in
                plan.listed += 1
                if !announced && plan.paths.count > largeAbove { announced = true; large() }
                seen.insert(ExactPath(file.path))
                guard let (size, mtime, sha) = known[ExactPath(file.path)] else { return plan.paths.append(file.path) }
                if size == file.size && mtime == file.mtimeMicros { return }
                // Read as a worker would, so that a link now pointing outside the root is not hashed.
                if size == file.size,
                   let read = try? FileReader.read(root: root, relativePath: file.path, maxBytes: Int(clamping: size)),
                   SHA256.hex(read.bytes) == sha {
                    plan.touched.append((file.path, file.mtimeMicros))
                } else {
                    plan.paths.append(file.path)
                }
            }, invalidName: { plan.invalidNames.append($0) }, tooLong: { plan.longPaths.append(LongPath.key($0)) })
            let gone = known.keys.filter { !seen.contains($0) }.map(\.path)  // deleted from the source
            plan.paths += gone
            plan.stored = known.count
            plan.deletions = gone.count
            return plan
        }
        var planned = Set(plan.paths.map(ExactPath.init))
        plan.paths += failed.filter { !planned.contains(ExactPath($0)) }
        planned.formUnion(failed.map(ExactPath.init))
        // An escaped spelling that equals a real path (a name with a literal `\x..`) would be planned twice.
        plan.invalidNames = plan.invalidNames.filter { !planned.contains(ExactPath($0)) }
        plan.longPaths = plan.longPaths.filter { !planned.contains(ExactPath($0)) }
        stored.removeAll()
        return plan
    }

    /// Refreshes the mtime of documents whose content did not change. Call inside a fenced transaction.
    public func touch(_ touched: [(String, Int64)], sourceID: String, on c: PostgresConnection) async throws {
        guard !touched.isEmpty else { return }
        try await c.execute("""
            UPDATE \(unescaped: schema.documents) d
               SET mtime = to_timestamp(0) + t.micros::bigint * interval '1 microsecond'
              FROM unnest(\(touched.map(\.0))::text[], \(touched.map { String($0.1) })::text[]) AS t(path, micros)
             WHERE d.source_id = \(sourceID) AND d.path = t.path
            """)
    }
}
