/// Where a run is (SPEC §5): stored as its raw value in `runs.state`.
public enum RunState: String, Sendable, Codable {
    case running
    case completed
    case completedWithFailures = "completed_with_failures"
    /// Ended without completing: its git pin vanished in a history rewrite.
    case aborted
}
