public import FileFleet
import FleetKafka
import Foundation
import Synchronization

/// The servers every test of one `swift test` process shares: a private PostgreSQL cluster and a
/// Tansu broker on free loopback ports, started on first use and stopped when the process exits.
/// `FILEFLEET_TEST_POSTGRES_URL` / `FILEFLEET_TEST_KAFKA_BROKERS` point the tests at external ones.
public final class TestEnvironment: Sendable {
    /// A superuser URL of the shared cluster's `postgres` database.
    public let postgresURL: String
    /// `HOST:PORT` of the shared broker.
    public let kafkaBrokers: String

    private init(postgresURL: String, kafkaBrokers: String) {
        self.postgresURL = postgresURL
        self.kafkaBrokers = kafkaBrokers
    }

    public static func shared() async throws -> TestEnvironment {
        try await startup.value
    }

    private static let startup = Task<TestEnvironment, any Error> {
        let environment = ProcessInfo.processInfo.environment
        async let postgres: String = {
            if let url = environment["FILEFLEET_TEST_POSTGRES_URL"], !url.isEmpty { return url }
            return try await PostgresServer.start().url
        }()
        async let kafka: String = {
            if let brokers = environment["FILEFLEET_TEST_KAFKA_BROKERS"], !brokers.isEmpty { return brokers }
            return try await TansuBroker.start().brokers
        }()
        return TestEnvironment(postgresURL: try await postgres, kafkaBrokers: try await kafka)
    }

    /// A fresh schema for one test; its `url` sets `search_path` to it.
    public func makeSchema() async throws -> TestSchema {
        let name = Self.uniqueName("test")
        let url = postgresURL
        _ = try await runBlocking {
            try Command.run("/usr/bin/env", ["psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", "CREATE SCHEMA \(name)"])
        }
        return TestSchema(name: name, url: Self.url(postgresURL, searchPath: name))
    }

    /// A name unique within this machine, safe as an SQL identifier, a topic or a group id.
    public static func uniqueName(_ prefix: String) -> String {
        let n = counter.withLock { value in value += 1; return value }
        return "\(prefix)_\(getpid())_\(n)_\(UInt32.random(in: 0..<100_000))"
    }

    private static let counter = Mutex(0)

    static func url(_ base: String, searchPath schema: String) -> String {
        let option = "options=-csearch_path%3D\(schema)"
        if base.contains("://") { return base + (base.contains("?") ? "&" : "?") + option }
        return base + " options='-csearch_path=\(schema)'"
    }
}

public struct TestSchema: Sendable {
    public let name: String
    /// A URL of the shared cluster whose connections use this schema by default.
    public let url: String
}

extension TestEnvironment {
    /// Settings for in-process fleets on the shared servers: `schema`, and a fresh topic and group
    /// each time (Tansu may keep a group whose last members left together stuck, SPEC §9.1), with
    /// the broker's quick-join session timeout.
    public func fleetSettings(schema: Schema, partitions: Int = 4) -> FleetSettings {
        var kafka = KafkaConfiguration(brokers: kafkaBrokers)
        kafka.sessionTimeout = .seconds(3)
        kafka.heartbeatInterval = .milliseconds(500)
        var settings = FleetSettings(postgresURL: postgresURL, kafka: kafka)
        settings.schema = schema
        settings.topic = Self.uniqueName("topic")
        settings.group = Self.uniqueName("group")
        settings.partitions = partitions
        return settings
    }
}
