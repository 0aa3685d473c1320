import Synchronization
import FileFleet
import Foundation

/// The servers a command talks to: the configured ones, or the embedded stack.
struct Servers {
    var settings: FleetSettings
    /// The embedded stack this command started and must stop, if any.
    var startedStack: EmbeddedStack?
    var embedded: Bool

    /// For `sync`: the configured servers, else the embedded stack (started here unless running).
    static func forSync(_ connection: ConnectionOptions) async throws -> Servers {
        if let settings = try connection.settings() { return Servers(settings: settings, startedStack: nil, embedded: false) }
        let stack = EmbeddedStack(stateDirectory: connection.resolvedStateDir)
        let (endpoints, keptUp) = try await runBlocking { (try stack.up(), stack.isKeptUp) }
        var settings = try connection.settings(postgresURL: endpoints.postgresURL, brokers: endpoints.kafkaBrokers)
        // The broker keeps groups in memory and can wedge a group whose last members leave
        // together (SPEC §9.1): each embedded run uses a topic and group of its own.
        let suffix = "\(getpid())-\(UInt32.random(in: 0...UInt32.max) % 1_000_000)"
        settings.topic += ".\(suffix)"
        settings.group += ".\(suffix)"
        settings.partitions = min(settings.partitions, 8)
        // The local broker completes a join after about half the session timeout (SPEC §9.1): 3 s
        // keeps a run's start and end short. --kafka-option still overrides both.
        settings.kafka.sessionTimeout = .seconds(3)
        settings.kafka.heartbeatInterval = .milliseconds(500)
        return Servers(settings: settings, startedStack: keptUp ? nil : stack, embedded: true)
    }

    /// For the other commands: the configured servers, else a running embedded stack.
    static func forTools(_ connection: ConnectionOptions) async throws -> FleetSettings {
        if let settings = try connection.settings() { return settings }
        let stack = EmbeddedStack(stateDirectory: connection.resolvedStateDir)
        guard let endpoints = try await runBlocking({ stack.running }) else {
            throw UsageError("no servers: give --postgres and --kafka (or FILEFLEET_POSTGRES_URL and FILEFLEET_KAFKA_BROKERS), or start the embedded stack with `filefleet stack up`")
        }
        return try connection.settings(postgresURL: endpoints.postgresURL, brokers: endpoints.kafkaBrokers)
    }

    func stop() async {
        guard let stack = startedStack else { return }
        _ = try? await runBlocking { try stack.down() }
    }
}

/// Cancels `task` on SIGINT or SIGTERM and remembers which one came.
final class SignalTrap: Sendable {
    private let sources: Mutex<[any DispatchSourceSignal]>
    private let received = SignalBox()

    /// The first signal received, shared with the Dispatch handlers.
    final class SignalBox: Sendable {
        let value = Mutex<Int32?>(nil)
    }

    init(_ onSignal: @escaping @Sendable (Int32) -> Void) {
        var sources: [any DispatchSourceSignal] = []
        let received = self.received
        for number in [SIGINT, SIGTERM] {
            Glibc.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                received.value.withLock { $0 = $0 ?? number }
                onSignal(number)
            }
            source.resume()
            sources.append(source)
        }
        self.sources = Mutex(sources)
    }

    var signal: Int32? { received.value.withLock { $0 } }

    deinit { sources.withLock { $0.forEach { $0.cancel() } } }
}
