import Synchronization

/// A one-shot event that tasks await instead of polling a flag: once fired, every waiter wakes,
/// and every later `wait` returns at once. A cancelled waiter wakes too.
final class StopSignal: Sendable {
    private struct State {
        var fired = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextID = 0
    }
    private let state = Mutex(State())

    /// Fires the signal; returns whether this call was the first.
    @discardableResult
    func fire() -> Bool {
        let (first, waiters) = state.withLock { s -> (Bool, [CheckedContinuation<Void, Never>]) in
            guard !s.fired else { return (false, []) }
            s.fired = true
            defer { s.waiters = [:] }
            return (true, Array(s.waiters.values))
        }
        waiters.forEach { $0.resume() }
        return first
    }

    var isFired: Bool { state.withLock { $0.fired } }

    /// Returns once the signal fired, or the calling task is cancelled.
    func wait() async {
        let id = state.withLock { s in defer { s.nextID += 1 }; return s.nextID }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { s in
                    if s.fired || Task.isCancelled { return true }
                    s.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Sleeps for `duration`, or less if the signal fires first. Throws if cancelled.
    func sleep(for duration: Duration) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await Task.sleep(for: duration) }
            group.addTask { await self.wait() }
            defer { group.cancelAll() }
            try await group.next()
        }
        try Task.checkCancellation()
    }
}
