import Synchronization

/// Whether a worker of another process is live (`filefleet.workers`), asked every `every` while
/// a sync imports a run itself: once one is, the run is worth handing to Kafka, where that worker
/// can take a share. Asked until the first one is seen or `stop`.
final class OtherWorkers: Sendable {
    private let seen = Mutex(false)
    private let watching = Mutex<Task<Void, Never>?>(nil)

    var present: Bool { seen.withLock { $0 } }

    /// Starts asking `count` (live workers of other processes; a failed count counts none).
    func watch(every: Duration, count: @escaping @Sendable () async throws -> Int) {
        let task = Task { [self] in
            while !Task.isCancelled {
                if let n = try? await count(), n > 0 {
                    seen.withLock { $0 = true }
                    return
                }
                try? await Task.sleep(for: every)
            }
        }
        watching.withLock { $0 = task }
    }

    func stop() {
        watching.withLock { $0?.cancel() }
    }
}
