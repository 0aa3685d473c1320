import FleetPostgres
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
