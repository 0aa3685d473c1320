import Logging
public import ServiceLifecycle
import UnixSignals

extension Worker: Service {}

/// The HTTP endpoints of a process (SPEC §7): served from their own threads until the group
/// shuts down.
extension HTTPServer: Service {
    public func run() async throws {
        defer { stop() }
        try? await gracefulShutdown()  // returns at the graceful shutdown, throws when cancelled
    }
}

/// How a `filefleet` process runs: its long-lived parts in one `ServiceGroup`, which turns SIGTERM
/// into a graceful shutdown (a worker drains; a sync stops publishing and releases its lease)
/// and ends every part when the main one ends.
public enum FleetServices {
    /// Runs `worker` (and `http`) until SIGTERM or SIGINT, then drains. Throws `DrainTimeout` when
    /// the batch in flight missed its drain deadline.
    public static func runWorker(_ worker: Worker, http: HTTPServer?) async throws {
        try await run(main: worker, http: http, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [])
    }

    /// Runs one sync of `source` (and `http`) until it ends; SIGTERM and SIGINT interrupt it.
    public static func runSync(_ coordinator: Coordinator, source: String, options: SyncOptions, http: HTTPServer?,
                               progress: @escaping @Sendable (SyncProgress) -> Void) async throws -> SyncSummary {
        let sync = SyncService(coordinator, source: source, options: options, progress: progress)
        try await run(main: sync, http: http, gracefulShutdownSignals: [.sigterm], cancellationSignals: [.sigint])
        guard let result = sync.result else { throw CancellationError() }
        return try result.get()
    }

    /// `main` ends the group when it returns or throws (its error is the group's). The HTTP
    /// server comes first: services shut down in reverse order, so it answers probes while
    /// `main` drains.
    private static func run(main: any Service, http: HTTPServer?, gracefulShutdownSignals: [UnixSignal],
                            cancellationSignals: [UnixSignal]) async throws {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = http.map { [.init(service: $0)] } ?? []
        services.append(.init(service: main, successTerminationBehavior: .gracefullyShutdownGroup,
                              failureTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: gracefulShutdownSignals,
                                                      cancellationSignals: cancellationSignals,
                                                      logger: Log(component: "lifecycle").logger))
        try await group.run()
    }
}
