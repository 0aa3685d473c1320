import ArgumentParser
import FileFleet
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

    @Option(name: .customLong("postgres-password-file"), help: ArgumentHelp(
        "Password for a --postgres URL that has none, read from FILE (a mounted Secret). Env: FILEFLEET_POSTGRES_PASSWORD_FILE.",
        valueName: "FILE"))
    var postgresPasswordFile: String?

    @Option(name: .customLong("kafka-option-file"), help: ArgumentHelp(
        "librdkafka properties, one KEY=VALUE a line (# comments), e.g. sasl.password from a mounted Secret; --kafka-option wins. Env: FILEFLEET_KAFKA_OPTION_FILE.",
        valueName: "FILE"))
    var kafkaOptionFile: String?

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

    /// Reads `--postgres-password-file` into the connections' default password (once, before
    /// any connection). A file that cannot be read is a usage error naming the file, never its content.
    func loadPostgresPassword() throws {
        guard let path = postgresPasswordFile ?? Self.environment["FILEFLEET_POSTGRES_PASSWORD_FILE"].flatMap({ $0.isEmpty ? nil : $0 })
        else { return }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw UsageError("--postgres-password-file \(path): cannot be read (\(Self.reason(path)))")
        }
        var password = Substring(text)
        while password.last?.isNewline == true { password.removeLast() }
        guard !password.isEmpty else { throw UsageError("--postgres-password-file \(path) is empty") }
        FleetProcess.setPostgresPassword(String(password))
    }

    /// The `--kafka-option-file` properties, then the `--kafka-option` flags. Values of keys that
    /// hold secrets (`sasl.password`, `ssl.key.password`, …) are scrubbed from all output.
    func kafkaProperties() throws -> [String] {
        var properties: [String] = []
        if let path = kafkaOptionFile ?? Self.environment["FILEFLEET_KAFKA_OPTION_FILE"].flatMap({ $0.isEmpty ? nil : $0 }) {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw UsageError("--kafka-option-file \(path): cannot be read (\(Self.reason(path)))")
            }
            for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") { continue }
                guard let eq = line.firstIndex(of: "="), eq != line.startIndex else {
                    throw UsageError("--kafka-option-file \(path) line \(number + 1): not KEY=VALUE")
                }
                properties.append(line)
            }
        }
        properties += kafkaOptions
        for property in properties {
            let parts = property.split(separator: "=", maxSplits: 1)
            if parts.count == 2, Self.isSecret(key: String(parts[0])) { FleetProcess.registerSecret(String(parts[1])) }
        }
        return properties
    }

    /// librdkafka properties whose values are secrets.
    static func isSecret(key: String) -> Bool {
        key.contains("password") || key.contains("secret") || key == "sasl.oauthbearer.config" || key == "ssl.key.pem"
    }

    /// Why `path` could not be read, in the system's words.
    private static func reason(_ path: String) -> String {
        access(path, R_OK) == 0 ? "not UTF-8 text" : String(cString: strerror(errno))
    }

    func settings() throws -> FleetSettings? {
        try loadPostgresPassword()
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
        var settings = try FleetSettings(postgresURL: postgresURL, brokers: brokers, kafkaProperties: try kafkaProperties())
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

/// How the process writes its log lines (SPEC §7).
struct LogOptions: ParsableArguments {
    @Option(help: "Lowest level logged: trace, debug, info, notice, warning, error or critical. Env: FILEFLEET_LOG_LEVEL. Default: info.")
    var logLevel: String?

    @Option(help: "logfmt (key=value, the default) or json (one object a line). Env: FILEFLEET_LOG_FORMAT.")
    var logFormat: String?

    func bootstrap() throws {
        let env = ProcessInfo.processInfo.environment
        try LogLines.bootstrap(format: logFormat ?? env["FILEFLEET_LOG_FORMAT"].flatMap { $0.isEmpty ? nil : $0 },
                               level: logLevel ?? env["FILEFLEET_LOG_LEVEL"].flatMap { $0.isEmpty ? nil : $0 })
    }
}

/// Writes one line to stderr.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Sets up the log lines (`logging`, else the environment's choice), then runs `body`, turning a
/// UsageError into one line on stderr and exit 2.
func withUsageErrors(logging: LogOptions? = nil, _ body: () async throws -> Void) async throws {
    do {
        try (logging ?? LogOptions.parse([])).bootstrap()
        try await body()
    } catch let error as UsageError {
        printError("filefleet: \(error.description)")
        throw ExitCode.usage
    } catch let error as StackError {
        printError("filefleet: \(error.description)")
        throw ExitCode.usage
    } catch let error where FleetProcess.configurationMessage(error) != nil {
        printError("filefleet: \(FleetProcess.configurationMessage(error)!)")
        throw ExitCode.usage
    }
}
