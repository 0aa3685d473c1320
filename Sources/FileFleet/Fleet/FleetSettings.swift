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
