/// What a planner hands the run driver: a new run's work, which `RunDriver.store` writes in one
/// fenced transaction, whatever the kind.
enum Plan {
    /// A directory listing compared with the stored rows, staged in a table of the planning
    /// connection's session: it is stored on that connection.
    case directory(DirectoryPlan)
    /// A git diff (or full listing), held in memory, with the stand-in keys of its paths too long
    /// to be keys: those on disk, to quarantine, and those gone, whose quarantine row leaves.
    case git(GitPlan, longKeys: [String], longGone: [String])
}
