public import FleetPostgres
import Foundation

/// What a git-mode run must do (SPEC §6.3).
public struct GitPlan: Sendable {
    /// HEAD when planned; the bookmark once the run completes. nil while the branch has no commit.
    public var pin: String?
    /// A full listing with reconciliation (no bookmark, or the bookmark is gone) rather than a diff.
    public var full = false
    /// Paths whose row must match the file on disk (a worker deletes the row when the file is gone).
    public var paths: [String] = []
    /// Paths whose row must go although the file is still there: excluded, hidden or ignored now.
    public var removals: [String] = []
    /// Paths `git status` showed, rechecked by the next run.
    public var worktree: [String] = []
    /// Paths git reported (diff, status, listing).
    public var listed = 0
    /// A full listing's stored documents and how many of them it would remove (SPEC §6.13).
    public var stored = 0, deletions = 0
    /// Paths of `paths` that changed between the bookmark and the pin: always imported (hashed),
    /// never skipped on size and mtime.
    var committed = Set<ExactPath>()
    /// Escaped spellings (`InvalidName`) of names that are not valid UTF-8: those on disk, to
    /// quarantine, and those gone, whose quarantine row leaves.
    public var invalidNames: [String] = []
    public var invalidGone: [String] = []

    /// A name git reported that is not valid UTF-8: on disk and taken by `filter`, it is quarantined
    /// (as a directory walk does); gone, its row goes.
    mutating func noteInvalid(_ path: GitRepository.Path, root: String, filter: PathFilter) {
        let escaped = InvalidName.escaped(path.bytes)
        var info = stat()
        let raw = Array(root.utf8) + [UInt8(ascii: "/")] + path.bytes + [0]
        let found = raw.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { lstat($0.baseAddress!, &info) == 0 }
        }
        // Git may report a name twice (the diff and the status): once in the plan.
        if !found {
            if !invalidGone.contains(escaped) { invalidGone.append(escaped) }
        } else if filter.includesFile(escaped), info.st_mode & S_IFMT != S_IFDIR, !invalidNames.contains(escaped) {
            invalidNames.append(escaped)
        }
    }
}

/// Plans a git-mode run: `git diff` from the bookmark to the pin plus what `git status` shows,
/// plus the previous run's worktree paths and the source's failed paths. Without a usable
/// bookmark, the work tree's full listing (size and mtime against the stored rows as the fast
/// path) and the deletion of rows for files that are gone.
///
/// Mode is decided at every sync: `.git` at the root means git mode. A source whose mode changes
/// (a directory that became a repository, or the reverse) switches at its next new run and loses
/// its bookmark, so its first git run is a full listing with reconciliation; an open run finishes
/// in the mode it was planned in. Files still on disk that no longer belong (now excluded, hidden
/// or ignored) are deleted when the run is planned and checkpointed as `deleted`: a worker would
/// import them again. Submodules and nested repositories are not imported.
public struct GitPlanner: Sendable {
    public let schema: Schema
    public var timeout: Duration = .seconds(900)

    public init(schema: Schema) {
        self.schema = schema
    }

    /// `forceFull`: list the full tree even when the bookmark is usable.
    public func plan(sourceID: String, root: String, filter: PathFilter, forceFull: Bool = false,
                     on c: PostgresConnection) async throws -> GitPlan {
        let store = RunStore(schema: schema)
        let source = try await store.source(sourceID, on: c)
        let bookmark = source?.mode == "git" ? source?.bookmark : nil
        // A long path's row holds a stand-in key, and an invalid name's an escaped spelling, not a
        // path to replan: each stays until git lists the path again.
        let failed = try await c.query("""
            SELECT path FROM \(unescaped: schema.failures)
             WHERE source_id = \(sourceID) AND reason <> \(LongPath.reason) AND reason <> \(InvalidName.reason)
            """).map { try $0.decode(String.self, 0) }

        let (pin, reachable) = try await GitRepository.withRepository(root: root, timeout: timeout) { repo in
            (try repo.head(), try bookmark.map { try repo.hasCommit($0) } ?? false)
        }
        guard !forceFull, let bookmark, let pin, reachable else {
            // The stored side, held once: path → (size, mtime µs).
            let known = try await Self.sizesAndMtimes(c.query("""
                SELECT path, size, (extract(epoch FROM mtime) * 1000000)::bigint
                  FROM \(unescaped: schema.documents) WHERE source_id = \(sourceID)
                """))
            return try await GitRepository.withRepository(root: root, timeout: timeout) { repo in
                try Self.fullPlan(repo, pin: pin, filter: filter, stored: known, failed: failed)
            }
        }
        let previous = try await store.lastWorktreePaths(sourceID: sourceID, on: c)
        // A tracked link whose target changed is in neither the diff nor the status: each stored
        // one is looked at again (its target's size and mtime, as the directory walk does).
        let links = try await GitRepository.withRepository(root: root, timeout: timeout) { try $0.trackedSymlinks() }
        let storedLinks = links.isEmpty ? [] : try await c.query("""
            SELECT path FROM \(unescaped: schema.documents) WHERE source_id = \(sourceID) AND path = ANY(\(links)::text[])
            """).map { try $0.decode(String.self, 0) }
        var plan = try await GitRepository.withRepository(root: root, timeout: timeout) { repo in
            try Self.incrementalPlan(repo, from: bookmark, pin: pin, filter: filter, extra: previous + failed + storedLinks)
        }
        let pending = plan.paths.filter { !plan.committed.contains(ExactPath($0)) }
        let unchanged = try await unchangedPaths(pending, sourceID: sourceID, root: root, failed: Set(failed.map(ExactPath.init)), on: c)
        plan.paths.removeAll { unchanged.contains(ExactPath($0)) }
        return plan
    }

    /// The full listing's fast path, for what `git status` shows: a path whose stored row has the
    /// file's size and mtime was imported as it is now (an uncommitted edit synced by an earlier
    /// run), so a pending edit is imported once, not by every run until it is committed. What
    /// the diff shows is always imported: a commit corrects even an edit that kept size and mtime.
    private func unchangedPaths(_ paths: [String], sourceID: String, root: String, failed: Set<ExactPath>,
                                on c: PostgresConnection) async throws -> Set<ExactPath> {
        guard !paths.isEmpty else { return [] }
        let known = try await Self.sizesAndMtimes(c.query("""
            SELECT d.path, d.size, (extract(epoch FROM d.mtime) * 1000000)::bigint
              FROM unnest(\(paths)::text[]) AS q(path)
              JOIN \(unescaped: schema.documents) d ON d.source_id = \(sourceID) AND d.path = q.path
            """))
        return try await runBlocking {
            Set(paths.map(ExactPath.init).filter { path in
                guard !failed.contains(path), let row = known[path] else { return false }
                var info = stat()
                // Through a link: its row holds the target's size and mtime.
                return stat(root + "/" + path.path, &info) == 0 && Self.isUnchanged(info, stored: row)
            })
        }
    }

    /// Rows of (path, size, mtime µs), keyed by path.
    private static func sizesAndMtimes(_ rows: some Sequence<PostgresRow>) throws -> [ExactPath: (Int64, Int64)] {
        var stored: [ExactPath: (Int64, Int64)] = [:]
        for row in rows {
            stored[ExactPath(try row.decode(String.self, 0))] = (try row.decode(Int64.self, 1), try row.decode(Int64.self, 2))
        }
        return stored
    }

    /// A file on disk (not a directory) whose size and mtime are the stored row's.
    static func isUnchanged(_ info: stat, stored: (size: Int64, mtime: Int64)) -> Bool {
        info.st_mode & S_IFMT != S_IFDIR && info.st_size == stored.size && Timestamps.micros(info.st_mtim) == stored.mtime
    }

    /// The diff from the bookmark to the pin, what `git status` shows and `extra` (the previous
    /// run's worktree paths, the failed paths), each read once. A file on disk is imported when git
    /// tracks it or shows it untracked; one git neither tracks nor shows is ignored (or inside a
    /// nested repository) and its row goes. Status lists every untracked file that is not ignored,
    /// so nothing needs `git check-ignore`; the index is read only for the paths that neither
    /// the diff nor status places (a file the commit deleted that is still on disk, an `extra`).
    static func incrementalPlan(_ repo: GitRepository, from bookmark: String, pin: String, filter: PathFilter,
                                extra: [String]) throws -> GitPlan {
        var plan = GitPlan(pin: pin)
        var candidates = Candidates()
        try repo.changedPaths(from: bookmark, to: pin) { path, inPin in
            plan.listed += 1
            guard let name = path.name else { return plan.noteInvalid(path, root: repo.root, filter: filter) }
            candidates.note(name, inPin ? [.committed, .inPin] : .committed)
        }
        try repo.statusPaths { path, status in
            plan.listed += 1
            guard let name = path.name else { return plan.noteInvalid(path, root: repo.root, filter: filter) }
            switch status {
            case .untracked: candidates.note(name, [.shown, .untracked])
            case .tracked: candidates.note(name, [.shown, .indexed])
            case .removedFromIndex: candidates.note(name, .shown)
            }
        }
        for path in extra where RelativePath.isValid(path) { candidates.note(path, []) }

        var unplaced: [String] = []  // on disk; tracked or ignored, the index says which
        for (path, facts) in zip(candidates.paths, candidates.facts) {
            if facts.contains(.committed) { plan.committed.insert(ExactPath(path)) }
            guard filter.includesFile(path) else {
                plan.removals.append(path)
                continue
            }
            if facts.contains(.shown) { plan.worktree.append(path) }
            switch Self.kind(repo.root, path) {
            case .missing: plan.paths.append(path)
            case .directory: plan.removals.append(path)  // a submodule or a nested repository
            case .file:
                // In the pin and not shown by status: the index and the file match the pin.
                let tracked = facts.contains(.indexed) || facts.contains(.inPin) && !facts.contains(.shown)
                if tracked || facts.contains(.untracked) { plan.paths.append(path) } else { unplaced.append(path) }
            }
        }
        let tracked = try repo.tracked(among: Set(unplaced.map(ExactPath.init)))
        for path in unplaced {
            if tracked.contains(ExactPath(path)) { plan.paths.append(path) } else { plan.removals.append(path) }
        }
        plan.worktree.sort()
        return plan
    }

    static func fullPlan(_ repo: GitRepository, pin: String?, filter: PathFilter,
                         stored: [ExactPath: (Int64, Int64)], failed: [String]) throws -> GitPlan {
        var plan = GitPlan(pin: pin, full: true)
        var leftover = stored  // rows without a listed file
        let failedSet = Set(failed.map(ExactPath.init))
        var planned = Set<ExactPath>()
        try repo.listFiles { path in
            plan.listed += 1
            guard let name = path.name else { return plan.noteInvalid(path, root: repo.root, filter: filter) }
            guard filter.includesFile(name), name.utf8.last != UInt8(ascii: "/") else { return }
            var info = stat()
            let exists = lstat(repo.root + "/" + name, &info) == 0
            if exists && info.st_mode & S_IFMT == S_IFDIR { return }
            let row = leftover.removeValue(forKey: ExactPath(name))
            var target = stat()  // through a link: its row holds the target's size and mtime
            if exists, stat(repo.root + "/" + name, &target) == 0, let row, !failedSet.contains(ExactPath(name)),
               isUnchanged(target, stored: row) {
                return  // unchanged since it was imported
            }
            if planned.insert(ExactPath(name)).inserted { plan.paths.append(name) }
        }
        var status = OrderedPaths()
        try repo.statusPaths { path, _ in
            if let name = path.name, filter.includesFile(name) { status.insert(name) }
        }
        // Gone from the tree, or on disk but no longer part of it (ignored, excluded, a nested repository).
        for path in leftover.keys.map(\.path) + failed where RelativePath.isValid(path) {
            guard planned.insert(ExactPath(path)).inserted else { continue }
            if case .missing = Self.kind(repo.root, path) { plan.paths.append(path) } else { plan.removals.append(path) }
        }
        plan.worktree = status.paths.sorted()
        plan.stored = stored.count
        plan.deletions = plan.removals.count + plan.paths.filter { leftover[ExactPath($0)] != nil }.count
        return plan
    }

    enum Kind { case missing, directory, file }

    static func kind(_ root: String, _ path: String) -> Kind {
        var info = stat()
        guard lstat(root + "/" + path, &info) == 0 else { return .missing }
        return info.st_mode & S_IFMT == S_IFDIR ? .directory : .file
    }

    /// Stores the run: its mode on the source, the removals (deleted here, checkpointed as
    /// `deleted`), the plan and the worktree paths. Call inside the lease's fenced transaction.
    public func createRun(_ plan: GitPlan, sourceID: String, token: Int64, maxFileBytes: Int, maxAttempts: Int,
                          on c: PostgresConnection) async throws -> RunRecord {
        let store = RunStore(schema: schema)
        try await store.adoptMode("git", sourceID: sourceID, on: c)
        var removed: [String] = []
        if !plan.removals.isEmpty {
            removed = try await c.query("""
                DELETE FROM \(unescaped: schema.documents) WHERE source_id = \(sourceID) AND path = ANY(\(plan.removals)::text[])
                RETURNING path
                """).map { try $0.decode(String.self, 0) }
            try await c.execute("""
                DELETE FROM \(unescaped: schema.failures) WHERE source_id = \(sourceID) AND path = ANY(\(plan.removals)::text[])
                """)
        }
        let run = try await store.createRun(sourceID: sourceID, mode: "git", pin: plan.pin, token: token,
                                            plan: plan.paths + removed, maxFileBytes: maxFileBytes,
                                            maxAttempts: maxAttempts, on: c)
        if !removed.isEmpty {
            try await c.execute("""
                INSERT INTO \(unescaped: schema.checkpoints) (run_id, path, outcome, worker)
                SELECT \(run.id), p, 'deleted', 'coordinator' FROM unnest(\(removed)::text[]) AS t(p)
                """)
        }
        if !plan.worktree.isEmpty {
            try await c.copyFrom("COPY \(unescaped: schema.gitWorktreePaths) (run_id, path) FROM STDIN") { writer in
                for path in plan.worktree { try await writer.writeRow(run.id, path) }
            }
        }
        return run
    }
}

/// The paths of an incremental plan in first-seen order, compared byte for byte, each with what
/// git said about it.
struct Candidates {
    struct Facts: OptionSet {
        let rawValue: UInt8
        /// Changed between the bookmark and the pin.
        static let committed = Facts(rawValue: 1 << 0)
        /// The pin's tree holds it.
        static let inPin = Facts(rawValue: 1 << 1)
        /// `git status` lists it.
        static let shown = Facts(rawValue: 1 << 2)
        /// `git status` shows it untracked and not ignored.
        static let untracked = Facts(rawValue: 1 << 3)
        /// `git status` says the index holds it.
        static let indexed = Facts(rawValue: 1 << 4)
    }

    private(set) var paths: [String] = []
    private(set) var facts: [Facts] = []
    private var index: [ExactPath: Int] = [:]

    mutating func note(_ path: String, _ new: Facts) {
        let key = ExactPath(path)
        if let i = index[key] {
            facts[i].formUnion(new)
        } else {
            index[key] = paths.count
            paths.append(path)
            facts.append(new)
        }
    }
}

/// Unique paths in first-seen order, compared byte for byte.
struct OrderedPaths {
    private(set) var paths: [String] = []
    private var seen = Set<ExactPath>()

    mutating func insert(_ path: String) {
        if seen.insert(ExactPath(path)).inserted { paths.append(path) }
    }
}
