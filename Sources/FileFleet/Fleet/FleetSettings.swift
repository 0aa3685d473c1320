public import FleetKafka
import FleetPostgres

/// Where the fleet's servers are and how it behaves; flags and environment resolved by the CLI.
public struct FleetSettings: Sendable {
    public var postgresURL: String
    public var kafka: KafkaConfiguration
    public var topic: String = "filefleet.paths"
    public var partitions: Int = 32
    public var group: String = "filefleet-workers"
    /// `filefleet` in production; tests use a schema of their own.
    public var schema: Schema = Schema()

    public init(postgresURL: String, kafka: KafkaConfiguration) {
        self.postgresURL = postgresURL
        self.kafka = kafka
    }

    /// Settings for these servers with the CLI's Kafka defaults: quick joins and quick takeover of a
    /// dead member's partitions (SPEC §9.1), then `kafkaProperties` (librdkafka `KEY=VALUE`s,
    /// which override them). A property librdkafka refuses is a usage error, its value scrubbed.
    public init(postgresURL: String, brokers: String, kafkaProperties: [String]) throws(UsageError) {
        var kafka = KafkaConfiguration(brokers: brokers, clientID: "filefleet")
        kafka.sessionTimeout = .seconds(6)
        kafka.heartbeatInterval = .seconds(1)
        for property in kafkaProperties {
            do { try kafka.addOption(property) } catch { throw UsageError("--kafka-option \(Redact.scrub(property)): \(error)") }
        }
        self.init(postgresURL: postgresURL, kafka: kafka)
    }

    /// The broker keeps groups in memory and can wedge a group whose last members leave together
    /// (SPEC §9.1): a run with in-process workers on the embedded stack uses a topic and group of
    /// its own, and the local broker's quick joins.
    public func forEmbeddedRun(suffix: String) -> FleetSettings {
        var settings = self
        settings.topic += ".\(suffix)"
        settings.group += ".\(suffix)"
        settings.partitions = min(settings.partitions, 8)
        // The local broker completes a join after about half the session timeout (SPEC §9.1): 3 s
        // keeps a run's start and end short. --kafka-option still overrides both.
        settings.kafka.sessionTimeout = .seconds(3)
        settings.kafka.heartbeatInterval = .milliseconds(500)
        return settings
    }

    /// The configured Kafka bootstrap servers.
    public var kafkaBrokers: String { kafka.brokers }
}

/// What one `sync` does beyond where the servers are (SPEC §4).
public struct SyncOptions: Sendable {
    public var sourceID: String?
    public var includes: [String] = []
    public var excludes: [String] = []
    public var workers: Int = 0
    public var maxFileBytes: Int = 64 << 20
    public var maxAttempts: Int = 3
    public var lease = LeaseTiming()
    public var stallWindow: Duration = .seconds(30)
    /// With no in-process workers: how long a run waits for a live worker before it stops
    /// (`no_workers`, SPEC §6.12).
    public var noWorkerTimeout: Duration = .seconds(30)
    /// Lets a run delete more than half of a source's documents (SPEC §6.13).
    public var allowMassDelete = false
    /// In-process workers' batch deadline (`WorkerOptions.batchTimeout`).
    public var batchTimeout: Duration = WorkerOptions().batchTimeout
    /// How often progress is read from the checkpoints.
    public var pollInterval: Duration = .milliseconds(500)
    /// A run with at most this many paths left is imported by the coordinator itself, without
    /// Kafka: a small incremental sync pays no topic and no consumer-group join (1–3 s). 0: never.
    public var directMax = 500

    public init() {}
}

/// What one worker does (SPEC §4, §6.6, §6.9).
public struct WorkerOptions: Sendable {
    public var concurrency: Int = System.coreCount
    public var batchSize: Int = 500
    public var batchWait: Duration = .milliseconds(50)
    public var drainTimeout: Duration = .seconds(20)
    /// How long one batch may take (SPEC §6.12): its transaction's statement and lock timeouts,
    /// and the deadline after which it is rolled back. A file read gets half of it.
    public var batchTimeout: Duration = .seconds(120)
    public var maxFileBytes: Int = 64 << 20
    public var maxAttempts: Int = 3
    /// Consecutive failed batches before the worker reports not-ready and gives its partitions up.
    public var failuresBeforePause: Int = 5
    public var poolSize: Int = 2

    public init() {}

    /// A read still running after this is abandoned and its file fails `read_timeout`.
    var readTimeout: Duration { batchTimeout / 2 }
    /// A batch or read stuck for longer makes `/healthz` say the process is not alive.
    var stuckBound: Duration { batchTimeout * 2 }
}
