/// The valve of SPEC §6.13: an empty or unmounted source directory looks like a tree whose files
/// were all deleted, so a plan that removes most of a source's documents needs `--allow-mass-delete`.
enum MassDeletion {
    /// Sources this small may be emptied without the flag.
    static let floor = 10

    static func check(deleting deletions: Int, of stored: Int, root: String, allowed: Bool) throws {
        guard !allowed, deletions > floor, deletions * 2 > stored else { return }
        throw UsageError("refusing to delete \(deletions) of \(stored) stored documents of \(root): the directory "
                         + "looks empty or unmounted; check the mount, or pass --allow-mass-delete if the files are really gone")
    }
}
