import FileFleet
import Foundation
import Synchronization

/// A PostgreSQL cluster owned by one test (or the shared one): restart it, starve it, stop it.
public final class PostgresServer: Sendable {
    public let url: String
    public let port: Int
    let cluster: LocalPostgres

    private init(cluster: LocalPostgres, port: Int) {
        self.cluster = cluster
        self.port = port
        self.url = cluster.url!
    }

    /// initdb into a fresh directory and start on a free loopback port, with extra `settings`
    /// (e.g. `["max_connections": "3"]`). Stopped at the latest when the test process exits.
    /// With `lab`, it also listens on the lab's host address and trusts the lab's nodes.
    /// `hba`: `pg_hba.conf` lines before the defaults (a TLS test's `hostssl … cert`).
    public static func start(settings: [String: String] = [:], lab: NetworkLab? = nil,
                             hba: [String] = []) async throws -> PostgresServer {
        var extra = settings
        if let lab { extra["listen_addresses"] = "'127.0.0.1,\(lab.hostAddress)'" }
        let settings = extra
        let directory = try ServerRegistry.newDirectory("postgres")
        return try await runBlocking {
            let cluster = LocalPostgres(directory: directory)
            // A port can be taken between choosing and binding it: try another one.
            for attempt in 1...3 {
                try cluster.initialize(port: try Command.freeLoopbackPort(),
                                       settings: ["fsync": "off", "superuser_reserved_connections": "0"].merging(settings) { $1 },
                                       trusting: lab.map { [$0.network] } ?? [], hba: hba)
                do {
                    try cluster.start()
                    break
                } catch where attempt < 3 {
                    continue
                }
            }
            return PostgresServer(cluster: cluster, port: cluster.port!)
        }
    }

    /// The password of `postgres` (the cluster's password file), for a client that cannot read
    /// that file or wants the password itself.
    public var password: String {
        get throws {
            let line = try String(contentsOfFile: cluster.passwordFile, encoding: .utf8)
            return String(line.split(separator: ":").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    public func restart() async throws {
        let cluster = self.cluster
        try await runBlocking { try cluster.restart() }
    }

    public func stop() async throws {
        let cluster = self.cluster
        try await runBlocking { try cluster.stop() }
    }

    /// Starts it again after `stop`, on the same port.
    public func start() async throws {
        let cluster = self.cluster
        try await runBlocking { try cluster.start() }
    }
}

/// A Tansu broker owned by one test (or the shared one).
public final class TansuBroker: Sendable {
    public let brokers: String
    let broker: LocalTansu

    let advertisedHost: String?

    private init(broker: LocalTansu, brokers: String, advertisedHost: String? = nil) {
        self.broker = broker
        self.brokers = brokers
        self.advertisedHost = advertisedHost
    }

    /// With `lab`, it listens on every interface and advertises the lab's host address, so that
    /// the lab's nodes and this host reach it alike.
    public static func start(lab: NetworkLab? = nil) async throws -> TansuBroker {
        let directory = try ServerRegistry.newDirectory("tansu")
        return try await runBlocking {
            let broker = LocalTansu(directory: directory)
            for attempt in 1...3 {
                do {
                    try broker.start(port: try Command.freeLoopbackPort(), advertisedHost: lab?.hostAddress)
                    break
                } catch where attempt < 3 {
                    continue
                }
            }
            let port = broker.brokers!.split(separator: ":").last!
            return TansuBroker(broker: broker, brokers: "\(lab?.hostAddress ?? "127.0.0.1"):\(port)", advertisedHost: lab?.hostAddress)
        }
    }

    public func stop() async throws {
        let broker = self.broker
        try await runBlocking { broker.stop() }
    }

    /// Stops the broker and starts a new one on the same port: topics, data and offsets are gone.
    public func restart() async throws {
        let broker = self.broker
        let port = Int(brokers.split(separator: ":").last!)!
        let host = advertisedHost
        try await runBlocking {
            broker.stop()
            try broker.start(port: port, advertisedHost: host)
        }
    }
}

/// Directories of the servers this process started, under `/tmp/filefleet-tests/run-<pid>`.
/// Servers outlive a killed test process (SPEC §9.3a), so each start first stops the servers of
/// runs whose process is gone, and an `atexit` hook stops this run's.
enum ServerRegistry {
    static let root = "/tmp/filefleet-tests"
    static let runDirectory = "\(root)/run-\(getpid())"
    private static let setup = Mutex(false)

    static func newDirectory(_ kind: String) throws -> String {
        try setup.withLock { done in
            guard !done else { return }
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
            chmod(root, 0o755)
            cleanStaleRuns()
            atexit { ServerRegistry.stopAll(in: ServerRegistry.runDirectory) }
            done = true
        }
        let directory = "\(runDirectory)/\(kind)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    static func cleanStaleRuns() {
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for run in runs where run.hasPrefix("run-") {
            guard let pid = Int32(run.dropFirst(4)), !Command.isAlive(pid) else { continue }
            stopAll(in: "\(root)/\(run)")
        }
    }

    static func stopAll(in directory: String) {
        let servers = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for server in servers {
            let path = "\(directory)/\(server)"
            if server.hasPrefix("postgres") { try? LocalPostgres(directory: path).stop(immediate: true) }
            if server.hasPrefix("tansu") { LocalTansu(directory: path).stop() }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
