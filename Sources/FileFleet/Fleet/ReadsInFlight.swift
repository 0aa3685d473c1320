import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

/// The reads of one batch that have begun and not returned, with when they began.
final class ReadsInFlight: Sendable {
    private let state = Mutex<[Int: (path: String, began: ContinuousClock.Instant,
                                     waiting: CheckedContinuation<FileOutcome, Never>)]>([:])
    /// Keys unique in the process: an abandoned read is known to `FleetMetrics` by its key.
    private static let keys = Atomic<Int>(0)

    func begin(_ path: String, _ waiting: CheckedContinuation<FileOutcome, Never>) -> Int {
        let key = Self.keys.add(1, ordering: .relaxed).newValue
        state.withLock { $0[key] = (path, .now, waiting) }
        return key
    }

    /// The continuation of a read that returned, unless it was abandoned.
    func end(_ key: Int) -> CheckedContinuation<FileOutcome, Never>? {
        state.withLock { $0.removeValue(forKey: key)?.waiting }
    }

    /// Removes the reads older than `timeout`; their callers are to be resumed with a failure.
    func abandon(olderThan timeout: Duration) -> [(key: String, path: String, waiting: CheckedContinuation<FileOutcome, Never>)] {
        let now = ContinuousClock.now
        return state.withLock { reads in
            let old = reads.filter { now - $0.value.began > timeout }
            for key in old.keys { reads[key] = nil }
            return old.map { ("read \($0.key)", $0.value.path, $0.value.waiting) }
        }
    }
}
