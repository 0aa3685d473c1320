public import FleetPostgres
import Foundation

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
        let source = try await SourceStore(schema: schema).source(sourceID, on: c)
        let bookmark = source?.mode == .git ? source?.bookmark : nil
        // A long path's row holds a stand-in key, and an invalid name's an escaped spelling, not a
        // path to replan: each stays until git lists the path again.
        let failed = try await FailureStore(schema: schema).retryablePaths(sourceID: sourceID, on: c)

        let (pin, reachable) = try await GitRepository.withRepository(root: root, timeout: timeout) { repo in
            (try repo.head(), try bookmark.map { try repo.hasCommit($0) } ?? false)
        }
        guard !forceFull, let bookmark, let pin, reachable else {
            // The stored side, held once: path → (size, mtime µs).
            let known = try await DocumentStore(schema: schema).sizesAndMtimes(sourceID: sourceID, on: c)
            return try await GitRepository.withRepository(root: root, timeout: timeout) { repo in
                try Self.fullPlan(repo, pin: pin, filter: filter, stored: known, failed: failed)
            }
        }
        let previous = try await RunStore(schema: schema).lastWorktreePaths(sourceID: sourceID, on: c)
        // A tracked link whose target changed is in neither the diff nor the status: each stored
        // one is looked at again (its target's size and mtime, as the directory walk does).
        let links = try await GitRepository.withRepository(root: root, timeout: timeout) { try $0.trackedSymlinks() }
        let storedLinks = try await DocumentStore(schema: schema).stored(links, sourceID: sourceID, on: c)
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
        let known = try await DocumentStore(schema: schema).sizesAndMtimes(of: paths, sourceID: sourceID, on: c)
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
}
