/// What a checkpoint says of one planned path (SPEC §5): stored as its raw value.
public enum Outcome: String, Sendable, CaseIterable {
    case imported
    case unchanged
    case deleted
    /// Quarantined: the reason is in `failures`.
    case failed
}
