/// A run with work left, no in-process workers and no live worker in `filefleet.workers`: nothing
/// will ever take its paths (SPEC §6.12).
public struct NoWorkers: Error, CustomStringConvertible {
    /// The summary's `reason`; `sync` exits 5 with it.
    public static let reason = "no_workers"
    public static let hint = "start `filefleet worker` processes against the same servers, or run sync with --workers N"
    let waited: Duration
    public var description: String {
        "no live worker for \(Int(waited.seconds)) s (none heartbeating in filefleet.workers): \(Self.hint)"
    }
}
