import FileFleet
import Foundation

/// The servers a command talks to: the configured ones, or the embedded stack.
struct Servers {
    var settings: FleetSettings
    /// The embedded stack this command started and must stop, if any.
    var startedStack: EmbeddedStack?
    var embedded: Bool

    /// In-process workers for `sync` (`--workers`, else the default of SPEC §4).
    var workers: Int

    /// For `sync`: the configured servers, else the embedded stack (started here unless running).
    /// Configured servers that are the running embedded stack of the state directory (`eval
    /// "$(filefleet stack env)"`) are used as the embedded default uses them: in-process workers on
    /// a topic and group of the run's own, unless `--workers 0` asks for the shared ones.
    static func forSync(_ connection: ConnectionOptions, workers: Int?) async throws -> Servers {
        let stack = EmbeddedStack(stateDirectory: connection.resolvedStateDir)
        if let settings = try connection.settings() {
            let running = try await runBlocking { stack.running }
            guard let running, running.postgresURL == settings.postgresURL, running.kafkaBrokers == settings.kafkaBrokers,
                  workers != 0 else {
                return Servers(settings: settings, startedStack: nil, embedded: false, workers: workers ?? 0)
            }
            return Servers(settings: embeddedRun(settings), startedStack: nil, embedded: true, workers: workers ?? System.coreCount)
        }
        let (endpoints, keptUp) = try await runBlocking { (try stack.up(), stack.isKeptUp) }
        let settings = try connection.settings(postgresURL: endpoints.postgresURL, brokers: endpoints.kafkaBrokers)
        let workers = workers ?? System.coreCount
        return Servers(settings: workers > 0 ? embeddedRun(settings) : settings, startedStack: keptUp ? nil : stack,
                       embedded: true, workers: workers)
    }

    /// A topic and group of the run's own (`FleetSettings.forEmbeddedRun`).
    static func embeddedRun(_ settings: FleetSettings) -> FleetSettings {
        settings.forEmbeddedRun(suffix: "\(getpid())-\(UInt32.random(in: 0...UInt32.max) % 1_000_000)")
    }

    /// For `status`, `lease` and `migrate`: the configured database (Kafka is neither needed nor
    /// asked for), else the running embedded stack's.
    static func database(_ connection: ConnectionOptions) async throws -> FleetDatabase {
        try connection.loadPostgresPassword()
        if let url = connection.configuredPostgresURL { return FleetDatabase(postgresURL: url) }
        guard let endpoints = try await runningStack(connection) else {
            throw UsageError("no database: give --postgres (or FILEFLEET_POSTGRES_URL), or start the embedded stack with `filefleet stack up`")
        }
        return FleetDatabase(postgresURL: endpoints.postgresURL)
    }

    /// For `worker`: the configured servers, else a running embedded stack.
    static func forTools(_ connection: ConnectionOptions) async throws -> FleetSettings {
        if let settings = try connection.settings() { return settings }
        guard let endpoints = try await runningStack(connection) else {
            throw UsageError("no servers: give --postgres and --kafka (or FILEFLEET_POSTGRES_URL and FILEFLEET_KAFKA_BROKERS), or start the embedded stack with `filefleet stack up`")
        }
        return try connection.settings(postgresURL: endpoints.postgresURL, brokers: endpoints.kafkaBrokers)
    }

    /// The embedded stack of the state directory, if it is up.
    private static func runningStack(_ connection: ConnectionOptions) async throws -> EmbeddedStack.Endpoints? {
        let stack = EmbeddedStack(stateDirectory: connection.resolvedStateDir)
        return try await runBlocking { stack.running }
    }

    func stop() async {
        guard let stack = startedStack else { return }
        _ = try? await runBlocking { try stack.down() }
    }
}
