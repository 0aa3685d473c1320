import ServiceLifecycle
import Synchronization

/// One `sync` as a service: the coordinator's run until it ends; a graceful shutdown (SIGTERM)
/// or a cancellation (SIGINT) interrupts it, and the lease is released (SPEC §4).
final class SyncService: Service {
    private let coordinator: Coordinator
    private let source: String
    private let options: SyncOptions
    private let progress: @Sendable (SyncProgress) -> Void
    private let outcome = Mutex<Result<SyncSummary, any Error>?>(nil)

    init(_ coordinator: Coordinator, source: String, options: SyncOptions, progress: @escaping @Sendable (SyncProgress) -> Void) {
        (self.coordinator, self.source, self.options, self.progress) = (coordinator, source, options, progress)
    }

    func run() async throws {
        let result: Result<SyncSummary, any Error>
        do {
            var summary = try await cancelWhenGracefulShutdown { [coordinator, source, options, progress] in
                try await coordinator.sync(source, options: options, progress: progress)
            }
            if summary.status == .interrupted { summary.reason = Task.isShuttingDownGracefully ? "SIGTERM" : "SIGINT" }
            result = .success(summary)
        } catch {
            result = .failure(error)
        }
        outcome.withLock { $0 = result }
    }

    /// What the run came to; nil if it never ran.
    var result: Result<SyncSummary, any Error>? { outcome.withLock { $0 } }
}
