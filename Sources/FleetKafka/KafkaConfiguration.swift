internal import CRdKafka

/// What FileFleet sets on librdkafka. `options` are passed through last (SPEC §3 `--kafka-option`),
/// so they override every typed setting.
public struct KafkaConfiguration: Sendable {
    public enum OffsetReset: String, Sendable {
        case earliest, latest
    }

    /// `host:port[,host:port…]`
    public var brokers: String
    public var clientID: String = "filefleet"
    /// A member that misses heartbeats for this long is removed and its partitions move.
    public var sessionTimeout: Duration = .seconds(45)
    public var heartbeatInterval: Duration = .seconds(3)
    /// Must be ≥ `sessionTimeout`. The consumer polls on its own thread, so a busy application
    /// does not exceed it; it also bounds how long a rebalance waits for a revocation.
    public var maxPollInterval: Duration = .seconds(300)
    /// Where a group starts on a partition without a committed offset.
    public var autoOffsetReset: OffsetReset = .earliest
    /// How long a revocation waits for the application's `onRevoke` to finish before the
    /// partitions are given up anyway.
    public var revocationTimeout: Duration = .seconds(20)
    /// The consumer takes no more messages from librdkafka while this many wait for `poll`
    /// (librdkafka's own queue then fills and its fetching stops), and pauses its partitions if
    /// they still wait after `ConsumerCore.holdBack` (see `KafkaConsumer`). Keep it well above
    /// `poll`'s `maxMessages`. 10,000 is twenty batches of FileFleet's 500; at 100,000 a worker
    /// with a backlog held ~28 MB of messages here (heaptrack), half its heap.
    public var consumerBufferLimit: Int = 10_000
    /// A produced message that is not acknowledged within this time fails with `.messageTimedOut`.
    public var messageTimeout: Duration = .seconds(60)
    /// Producer batching delay.
    public var linger: Duration = .milliseconds(5)
    /// librdkafka properties, e.g. `["debug": "cgrp", "security.protocol": "ssl"]`.
    public var options: [String: String] = [:]

    public init(brokers: String, clientID: String = "filefleet") {
        self.brokers = brokers
        self.clientID = clientID
    }

    /// Parses `KEY=VALUE` (the `--kafka-option` syntax) into `options`.
    public mutating func addOption(_ keyValue: String) throws(KafkaError) {
        guard let eq = keyValue.firstIndex(of: "="), eq != keyValue.startIndex else {
            throw KafkaError(code: .invalidArgument, message: "Kafka option \"\(keyValue)\" is not KEY=VALUE")
        }
        options[String(keyValue[..<eq])] = String(keyValue[keyValue.index(after: eq)...])
    }

    var commonProperties: [(String, String)] {
        [("bootstrap.servers", brokers), ("client.id", clientID)]
    }

    var producerProperties: [(String, String)] {
        commonProperties + [
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("partitioner", "murmur2_random"),
            ("message.timeout.ms", String(Self.milliseconds(messageTimeout))),
            ("linger.ms", String(Self.milliseconds(linger))),
            // A producer's metadata request may create a missing topic with the broker's default
            // partition count (after a restart that lost it): FileFleet creates its topic itself,
            // with its own count, so that a restart cannot leave it with fewer partitions than
            // the group's consumers expect.
            ("allow.auto.create.topics", "false"),
        ]
    }

    func consumerProperties(group: String) -> [(String, String)] {
        commonProperties + [
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
            ("auto.offset.reset", autoOffsetReset.rawValue),
            ("session.timeout.ms", String(Self.milliseconds(sessionTimeout))),
            ("heartbeat.interval.ms", String(Self.milliseconds(heartbeatInterval))),
            ("max.poll.interval.ms", String(Self.milliseconds(maxPollInterval))),
            // What the consumer fetches ahead: at most 1 MB a fetch and 1 MB queued, and 100
            // messages a partition, still thousands of path messages (about 100 bytes each), many
            // batches of work. librdkafka's defaults (50 MB, 64 MB, 100,000) grew a worker's
            // memory with the backlog: +128 MB for two workers at 1,000,000 paths, and still
            // +64 MB for one at 8 MB queued; a fetch's buffer lives until its last message is gone.
            ("fetch.max.bytes", "1048576"),
            // How long the broker may hold a fetch of a partition that has nothing new: an empty
            // partition gets its first messages up to this late (librdkafka's 500 ms delayed the
            // first batch of a run by about a second).
            ("fetch.wait.max.ms", "100"),
            ("queued.max.messages.kbytes", "1024"),
            ("queued.min.messages", "100"),
            // Past those thresholds librdkafka fetches a partition again only after this long
            // (default 1 s): with a queue this short, a busy worker drained a partition and then
            // waited for it. 10 ms: the 60,000 paths a 100k run publishes were imported at 14,300
            // files/s instead of 10,700.
            ("fetch.queue.backoff.ms", "10"),
            // A subscribed topic that comes back (a broker restart lost it, the coordinator made it
            // again) is seen within seconds, not librdkafka's 5 minutes: the group's leader then
            // rebalances it onto its members without any of them leaving.
            ("topic.metadata.refresh.interval.ms", "5000"),
        ]
    }

    static func milliseconds(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        return s * 1000 + atto / 1_000_000_000_000_000
    }

    /// The kind of client a configuration is made for: admin clients are producers to librdkafka.
    enum Client {
        case producer, consumer
    }

    /// Pass-through options that only one kind of client reads. One `--kafka-option` list serves
    /// every client of a process; librdkafka warns (CONFWARN) when a client is given the other
    /// kind's property, so each client gets only the options it can use.
    static let consumerOnlyKeys: Set<String> = [
        "group.id", "group.instance.id", "group.protocol", "group.remote.assignor", "partition.assignment.strategy",
        "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms", "auto.offset.reset",
        "enable.auto.commit", "auto.commit.interval.ms", "enable.auto.offset.store", "enable.partition.eof",
        "queued.min.messages", "queued.max.messages.kbytes", "fetch.wait.max.ms", "fetch.min.bytes",
        "fetch.max.bytes", "fetch.message.max.bytes", "max.partition.fetch.bytes", "fetch.error.backoff.ms", "isolation.level", "check.crcs",
    ]
    static let producerOnlyKeys: Set<String> = [
        "acks", "request.required.acks", "enable.idempotence", "transactional.id", "linger.ms",
        "queue.buffering.max.ms", "queue.buffering.max.messages", "queue.buffering.max.kbytes",
        "batch.num.messages", "batch.size", "compression.codec", "compression.type", "compression.level",
        "message.timeout.ms", "delivery.timeout.ms", "partitioner", "retries", "message.send.max.retries",
    ]

    /// The `options` a client of this kind reads, sorted by key.
    func passThrough(for client: Client) -> [(String, String)] {
        let foreign = client == .producer ? Self.consumerOnlyKeys : Self.producerOnlyKeys
        return options.filter { !foreign.contains($0.key) }.sorted(by: { $0.key < $1.key })
    }

    /// A new `rd_kafka_conf_t` with `properties` and then `passThrough(for: client)` applied;
    /// the caller owns it.
    func makeConf(_ properties: [(String, String)], for client: Client) throws(KafkaError) -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        for (key, value) in properties + passThrough(for: client) {
            var errstr = [CChar](repeating: 0, count: 512)
            let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(code: .invalidArgument, message: "Kafka option \(key): \(text(errstr))")
            }
        }
        return conf
    }
}
