import Dispatch
import Synchronization

/// A task executor with a serial Dispatch queue of its own. Work that must keep its cadence while
/// the cooperative pool is saturated (the lease heartbeat) runs here: `Task(executorPreference:)`.
public final class ThreadExecutor: TaskExecutor {
    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label, qos: .userInteractive)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Sleeps on this executor's own timer: `Task.sleep` would wake the task up through the
    /// global pool first, where it waits behind busy tasks. Cancellation wakes it at once.
    public func sleep(until deadline: ContinuousClock.Instant) async throws {
        let delay = ContinuousClock.now.duration(to: deadline)
        let nanoseconds = max(0, delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000)
        let waiter = Mutex<CheckedContinuation<Void, Never>?>(nil)
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                waiter.withLock { $0 = continuation }
                if Task.isCancelled { waiter.withLock { $0.take() }?.resume() }
                queue.asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) {
                    waiter.withLock { $0.take() }?.resume()
                }
            }
        } onCancel: {
            waiter.withLock { $0.take() }?.resume()
        }
        try Task.checkCancellation()
    }
}
