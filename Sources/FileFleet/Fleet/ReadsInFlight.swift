import Foundation
import Synchronization

/// The chunks of one batch being read, each on a thread of its own: which file each is reading
/// and since when, and what it has read so far.
final class ReadsInFlight: Sendable {
    private struct Chunk {
        var path: String?
        var began: ContinuousClock.Instant
        var outcomes: [FileOutcome] = []
        let waiting: CheckedContinuation<[FileOutcome], Never>
    }

    private let state = Mutex<[Int: Chunk]>([:])
    /// Keys unique in the process: an abandoned read is known to `FleetMetrics` by its key.
    private static let keys = Atomic<Int>(0)

    /// A chunk begins; `waiting` gets its outcomes, all of them or (when abandoned) those before a read that hung.
    func begin(_ waiting: CheckedContinuation<[FileOutcome], Never>) -> Int {
        let key = Self.keys.add(1, ordering: .relaxed).newValue
        state.withLock { $0[key] = Chunk(path: nil, began: .now, waiting: waiting) }
        return key
    }

    /// The chunk starts reading `path`; false when it was abandoned and is to stop.
    func starting(_ key: Int, _ path: String) -> Bool {
        state.withLock { chunks in
            guard chunks[key] != nil else { return false }
            chunks[key]!.path = path
            chunks[key]!.began = .now
            return true
        }
    }

    /// The chunk's current read returned `outcome`; false when it was abandoned meanwhile.
    func finished(_ key: Int, _ outcome: FileOutcome) -> Bool {
        state.withLock { chunks in
            guard chunks[key] != nil else { return false }
            chunks[key]!.outcomes.append(outcome)
            chunks[key]!.path = nil
            return true
        }
    }

    /// The chunk read all its files: its caller, to be resumed with these outcomes, unless it was abandoned.
    func end(_ key: Int) -> (waiting: CheckedContinuation<[FileOutcome], Never>, outcomes: [FileOutcome])? {
        state.withLock { $0.removeValue(forKey: key).map { ($0.waiting, $0.outcomes) } }
    }

    /// Removes the chunks whose current read began more than `timeout` ago. Their callers are to be
    /// resumed with `done` and a failure for `path`; the rest of such a chunk is not read by it.
    func abandon(olderThan timeout: Duration) -> [(key: String, path: String, done: [FileOutcome],
                                                    waiting: CheckedContinuation<[FileOutcome], Never>)] {
        let now = ContinuousClock.now
        return state.withLock { chunks in
            let old = chunks.filter { $0.value.path != nil && now - $0.value.began > timeout }
            for key in old.keys { chunks[key] = nil }
            return old.map { ("read \($0.key)", $0.value.path!, $0.value.outcomes, $0.value.waiting) }
        }
    }
}
