import ArgumentParser
import FileFleet
import FleetKafka
import Foundation

/// Where Postgres and Kafka are (SPEC §3). Flags override environment variables.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("postgres"), help: ArgumentHelp(
        "libpq connection string (URI or key=value). Env: FILEFLEET_POSTGRES_URL. None: embedded mode.",
        valueName: "URL"))
    var postgresURL: String?

    @Option(name: .customLong("kafka"), help: ArgumentHelp(
        "Kafka bootstrap servers. Env: FILEFLEET_KAFKA_BROKERS. None: embedded mode.", valueName: "HOST:PORT[,…]"))
    var kafkaBrokers: String?

    @Option(help: "Topic carrying the paths. Env: FILEFLEET_TOPIC. Default: filefleet.paths.")
    var topic: String?

    @Option(help: "Partitions of the topic when it is created. Env: FILEFLEET_PARTITIONS. Default: 32.")
    var partitions: Int?

    @Option(help: "Consumer group of the workers. Env: FILEFLEET_GROUP. Default: filefleet-workers.")
    var group: String?

    @Option(name: .customLong("kafka-option"), help: ArgumentHelp(
        "A librdkafka property, passed through (repeatable).", valueName: "KEY=VALUE"))
    var kafkaOptions: [String] = []

    @Option(help: ArgumentHelp("Directory of the embedded stack. Env: FILEFLEET_STATE_DIR. Default: ./.filefleet.",
                               valueName: "DIR"))
    var stateDir: String?

}

extension ConnectionOptions {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// Where the servers are, or nil for the embedded stack (neither configured).
    /// Exactly one of them configured is a usage error naming the other.
    /// `--postgres`, else `FILEFLEET_POSTGRES_URL`.
    var configuredPostgresURL: String? {
        postgresURL ?? Self.environment["FILEFLEET_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func settings() throws -> FleetSettings? {
        let env = Self.environment
        let postgres = configuredPostgresURL
        let kafka = kafkaBrokers ?? env["FILEFLEET_KAFKA_BROKERS"].flatMap { $0.isEmpty ? nil : $0 }
        switch (postgres, kafka) {
        case (nil, nil): return nil
        case (_?, nil): throw UsageError("--postgres is set but --kafka (FILEFLEET_KAFKA_BROKERS) is not: give both, or neither for the embedded stack")
        case (nil, _?): throw UsageError("--kafka is set but --postgres (FILEFLEET_POSTGRES_URL) is not: give both, or neither for the embedded stack")
        case let (postgres?, kafka?): return try settings(postgresURL: postgres, brokers: kafka)
        }
    }

    /// Settings for these servers, with the topic, group and Kafka options of the flags and environment.
    func settings(postgresURL: String, brokers: String) throws -> FleetSettings {
        let env = Self.environment
        var kafka = KafkaConfiguration(brokers: brokers, clientID: "filefleet")
        // Quick joins and quick takeover of a dead member's partitions (SPEC §9.1); override with --kafka-option.
        kafka.sessionTimeout = .seconds(6)
        kafka.heartbeatInterval = .seconds(1)
        for option in kafkaOptions {
            do { try kafka.addOption(option) } catch { throw UsageError("--kafka-option \(option): \(error)") }
        }
        var settings = FleetSettings(postgresURL: postgresURL, kafka: kafka)
        settings.topic = topic ?? env["FILEFLEET_TOPIC"] ?? settings.topic
        settings.group = group ?? env["FILEFLEET_GROUP"] ?? settings.group
        if let text = partitions.map(String.init) ?? env["FILEFLEET_PARTITIONS"] {
            guard let n = Int(text), n > 0 else { throw UsageError("--partitions (FILEFLEET_PARTITIONS) must be a positive number, not \(text)") }
            settings.partitions = n
        }
        return settings
    }

    var resolvedStateDir: String { stateDir ?? Self.environment["FILEFLEET_STATE_DIR"] ?? "./.filefleet" }
}

/// `--http` of `sync` and `worker` (SPEC §7).
struct HTTPOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Serve /healthz, /readyz, /metrics and a status page at /; 127.0.0.1 unless a host is given. Env: FILEFLEET_HTTP.",
                               valueName: "[HOST:]PORT"))
    var http: String?

    /// Starts the server when asked for; stop it when the command ends.
    func start(settings: FleetSettings, metrics: FleetMetrics) throws -> HTTPServer? {
        guard let address = http ?? ProcessInfo.processInfo.environment["FILEFLEET_HTTP"], !address.isEmpty else { return nil }
        let server = try HTTPServer(address: address, handler: StatusPage.handler(settings: settings, metrics: metrics))
        Log(component: "http").event("listening", ["address": "\(server.host):\(server.port)"])
        return server
    }
}

/// Writes one line to stderr.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Runs `body`, turning a UsageError into one line on stderr and exit 2.
func withUsageErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as UsageError {
        printError("filefleet: \(error.description)")
        throw ExitCode.usage
    } catch let error as StackError {
        printError("filefleet: \(error.description)")
        throw ExitCode.usage
    }
}
