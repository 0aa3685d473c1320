/// Counts of checkpoints by outcome.
public struct OutcomeCounts: Sendable, Equatable {
    public var imported = 0, unchanged = 0, deleted = 0, failed = 0
    public var total: Int { imported + unchanged + deleted + failed }

    public init(imported: Int = 0, unchanged: Int = 0, deleted: Int = 0, failed: Int = 0) {
        (self.imported, self.unchanged, self.deleted, self.failed) = (imported, unchanged, deleted, failed)
    }

    public subscript(outcome: Outcome) -> Int {
        get {
            switch outcome {
            case .imported: imported
            case .unchanged: unchanged
            case .deleted: deleted
            case .failed: failed
            }
        }
        set {
            switch outcome {
            case .imported: imported = newValue
            case .unchanged: unchanged = newValue
            case .deleted: deleted = newValue
            case .failed: failed = newValue
            }
        }
    }
}
