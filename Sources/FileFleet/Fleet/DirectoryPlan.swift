import FleetCrypto
import FleetPostgres
import Foundation
import Synchronization

/// What a directory-mode run must do (SPEC §6.3): files that are new or changed, stored documents
/// whose file is gone, and paths that failed before. Size and mtime are the fast path; when they
/// differ the file is hashed, and an equal hash only refreshes the stored mtime.
///
/// The plan itself is not in memory: it is staged on the planning connection, in a temporary
/// table (`table`), which `RunStore.createRun(stagedIn:…)` stores as the run's plan and
/// `DirectoryPlanner.touch` reads for the mtimes to refresh. These are what it counted.
public struct DirectoryPlan: Sendable {
    /// The session's table of the plan: `path`, `action` (`new`, `changed`, `gone`, `failed`,
    /// `quarantined`, `removed`: planned; `touch`: unchanged content, mtime to refresh), and the file's
    /// `size` and `mtime` where it is on disk.
    public static let table = "pg_temp.filefleet_plan"
    public var listed = 0
    /// Paths to plan (every action but `touch`), and unchanged files whose mtime is refreshed.
    public var planned = 0, touched = 0
    /// Stored documents of the source, and how many of them the listing no longer has.
    public var stored = 0, deletions = 0
    /// Of the deletions, files still on disk that this run's filter leaves out (`removed`).
    public var removed = 0
    /// Names that are not valid UTF-8, escaped (`InvalidName`): quarantined by the coordinator.
    public var invalidNames: [String] = []
    /// Stand-in keys of paths too long to store (`LongPath`): quarantined by the coordinator.
    public var longPaths: [String] = []
    /// Directories that cannot be listed (`UnreadableDirectory`): quarantined by the coordinator.
    public var unreadableDirectories: [String] = []
    /// How long the walk (and its copy) took, and the comparison with the stored documents.
    public var walking = Duration.zero, comparing = Duration.zero
}
