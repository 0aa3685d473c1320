import Dispatch

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
}
