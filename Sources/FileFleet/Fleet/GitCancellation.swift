import Foundation
import Synchronization

/// Lets an async caller cancel the blocking git command it waits for.
final class GitCancellation: Sendable {
    private let flag = Atomic<Bool>(false)
    var isCancelled: Bool { flag.load(ordering: .relaxed) }
    func cancel() { flag.store(true, ordering: .relaxed) }
}
