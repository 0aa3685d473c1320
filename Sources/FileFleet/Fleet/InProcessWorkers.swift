import Synchronization

/// The workers a sync runs in its own process (`sync --workers N`, the embedded mode). A run
/// starts them while it imports its first paths itself, once it sees that the rest will take
/// longer than their group join (1–3 s, longer on brokers that delay the first rebalance): the
/// join then overlaps that import instead of following it, and a run done sooner spares it.
final class InProcessWorkers: Sendable {
    private let workers: [Worker]
    /// The task running every worker once started; it ends when they have all drained. Once
    /// `stopped`, workers never started stay so.
    private let running = Mutex<(task: Task<Void, any Error>?, stopped: Bool)>((nil, false))

    init(count: Int, settings: FleetSettings, options: WorkerOptions, log: Log, metrics: FleetMetrics) {
        workers = (0..<count).map { _ in Worker(settings: settings, options: options, log: log, metrics: metrics) }
    }

    /// Starts the workers unless they are running already (or there are none).
    func start() {
        guard !workers.isEmpty else { return }
        running.withLock { state in
            guard state.task == nil, !state.stopped else { return }
            state.task = Task { [workers] in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in workers { group.addTask { try await worker.run() } }
                    do {
                        try await group.waitForAll()
                    } catch {
                        // One worker failed: the others stop too, and the run ends with its error.
                        workers.forEach { $0.requestStop() }
                        throw error
                    }
                }
            }
        }
    }

    /// Runs `body` while the workers serve (starting them unless started), then `whileDraining` while
    /// they drain, and returns its value once they have. A worker that fails ends `body` and the
    /// run with its error; a `body` that fails (or is cancelled) stops and cancels the workers.
    func serving<T: Sendable>(_ body: @escaping @Sendable () async throws -> Void,
                              whileDraining after: () async throws -> T) async throws -> T {
        start()
        guard let task = running.withLock({ $0.task }) else {
            try await body()
            return try await after()
        }
        do {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask { try await body(); return true }
                group.addTask { try await task.value; return false }
                defer { requestStop() }  // before the group waits for what is left
                // The workers end first only when one failed (next throws) or all were stopped.
                while let bodyDone = try await group.next(), !bodyDone {}
            }
        } catch {
            task.cancel()
            throw error
        }
        let result: T
        do {
            result = try await after()
        } catch {
            _ = try? await task.value
            throw error
        }
        try await task.value  // the drain's outcome: a batch that could not finish in time throws
        return result
    }

    /// Stops the workers (if started) and waits until they have drained, ignoring how they ended:
    /// for a run that stops before it needed them. A cancelled caller (SIGINT) cancels them too.
    func stop() async {
        let started = running.withLock { state in
            state.stopped = true
            return state.task
        }
        guard let task = started else { return }
        requestStop()
        if Task.isCancelled { task.cancel() }
        _ = try? await task.value
    }

    /// Whether there are workers and none has partitions yet: they are joining their group.
    var joining: Bool { !workers.isEmpty && !workers.contains { $0.hasPartitions } }

    private func requestStop() { workers.forEach { $0.requestStop() } }
}
