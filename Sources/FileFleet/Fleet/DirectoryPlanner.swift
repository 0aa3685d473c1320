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

    /// Plans a run. `large` is called once, from the walk, as soon as the run is sure to hold more
    /// than `largeAbove` paths: the caller starts what a large run needs while the walk goes on.
    ///
    /// Memory grows with the listing only: the stored documents stream past it through a cursor,
    /// a page at a time, and are never all held (a million stored paths are not a million-entry map).
    public func plan(sourceID: String, root: String, filter: PathFilter, largeAbove: Int = .max,
                     large: @escaping @Sendable () -> Void = {}, on c: PostgresConnection) async throws -> DirectoryPlan {
        let storedCount = try await c.query("""
            SELECT count(*) FROM \(unescaped: schema.documents) WHERE source_id = \(sourceID)
            """)[0].decode(Int.self, 0)
        // Invalid names and long paths are found again by the walk; they are not paths a worker could read.
        let failed = try await c.query("""
            SELECT path FROM \(unescaped: schema.failures)
             WHERE source_id = \(sourceID) AND reason <> ALL(\([InvalidName.reason, LongPath.reason])::text[])
            """).map { try $0.decode(String.self, 0) }

        var (listing, plan) = try await runBlocking { () throws -> (Listing, DirectoryPlan) in
            var listing = Listing(capacity: storedCount)
            var plan = DirectoryPlan()
            var announced = false
            try DirectoryWalker(root: root, filter: filter).walk(file: { file in
                listing.append(file)
                // More files than stored documents: at least that many are new.
                if !announced && listing.files.count - storedCount > largeAbove { announced = true; large() }
            }, invalidName: { plan.invalidNames.append($0) }, tooLong: { plan.longPaths.append(LongPath.key($0)) })
            plan.listed = listing.files.count
            listing.indexFiles()
            return (listing, plan)
        }

        // The stored side, a page at a time: each stored path is found in the listing (and marked),
        // or it is gone. Same size and mtime: unchanged; same size only: hashed, as a worker reads it.
        var gone: [String] = []
        try await c.withTransaction { c in
            try await c.execute("""
                DECLARE stored NO SCROLL CURSOR FOR
                SELECT path, size, (extract(epoch FROM mtime) * 1000000)::bigint, sha256
                  FROM \(unescaped: schema.documents) WHERE source_id = \(sourceID)
                """)
            while true {
                let rows = try await c.query("FETCH 20000 FROM stored")
                if rows.isEmpty { break }
                var toHash: [(index: Int, sha256: String)] = []
                for row in rows {
                    let path = try row.decode(String.self, 0)
                    plan.stored += 1
                    guard let i = listing.index[ExactPath(path)] else { gone.append(path); continue }
                    let (size, mtime) = (try row.decode(Int64.self, 1), try row.decode(Int64.self, 2))
                    let file = listing.files[i]
                    if size == file.size && mtime == file.mtimeMicros {
                        listing.state[i] = .unchanged
                    } else if size == file.size {
                        toHash.append((i, try row.decode(String.self, 3)))
                    } else {
                        listing.state[i] = .changed
                    }
                }
                guard !toHash.isEmpty else { continue }
                let candidates = toHash.map { (listing.files[$0.index], $0.sha256) }
                let same = try await runBlocking { () -> [Bool] in
                    // Read as a worker would, so that a link now pointing outside the root is not hashed.
                    candidates.map { file, sha256 in
                        guard let read = try? FileReader.read(root: root, relativePath: file.path, maxBytes: Int(clamping: file.size))
                        else { return false }
                        return SHA256.hex(read.bytes) == sha256
                    }
                }
                for ((i, _), same) in zip(toHash, same) {
                    listing.state[i] = same ? .unchanged : .changed
                    if same { plan.touched.append((listing.files[i].path, listing.files[i].mtimeMicros)) }
                }
            }
            try await c.execute("CLOSE stored")
        }

        // New and changed files in the order of the walk, then the files that are gone, then the
        // paths that failed before and are neither. The listing's index says what is planned: no
        // second set of every planned path (40 MB and 0.3 s at a million).
        for (file, state) in zip(listing.files, listing.state) where state != .unchanged { plan.paths.append(file.path) }
        plan.deletions = gone.count
        plan.paths += gone
        let goneSet = Set(gone.map(ExactPath.init))
        var extra = Set<ExactPath>()
        func isPlanned(_ path: String) -> Bool {
            let key = ExactPath(path)
            if let i = listing.index[key] { return listing.state[i] != .unchanged }
            return goneSet.contains(key) || extra.contains(key)
        }
        for path in failed where !isPlanned(path) {
            plan.paths.append(path)
            extra.insert(ExactPath(path))
        }
        // An escaped spelling that equals a real path (a name with a literal `\x..`) would be planned twice.
        plan.invalidNames = plan.invalidNames.filter { !isPlanned($0) }
        plan.longPaths = plan.longPaths.filter { !isPlanned($0) }
        return plan
    }

    /// The files of a walk in its order, found by path, each with what the stored side said of it.
    private struct Listing: Sendable {
        enum State: UInt8 { case new, changed, unchanged }
        var files: [ListedFile] = []
        var index: [ExactPath: Int] = [:]
        var state: [State] = []

        init(capacity: Int = 0) {
            files.reserveCapacity(capacity)
        }

        mutating func append(_ file: ListedFile) {
            files.append(file)
        }

        /// After the walk: every file findable by its path, sized once.
        mutating func indexFiles() {
            index = Dictionary(minimumCapacity: files.count)
            for (i, file) in files.enumerated() { index[ExactPath(file.path)] = i }
            state = Array(repeating: .new, count: files.count)
        }
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
