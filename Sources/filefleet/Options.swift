import ArgumentParser

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

    @Option(help: ArgumentHelp("Serve /healthz, /readyz, /metrics and a status page. Env: FILEFLEET_HTTP.",
                               valueName: "HOST:PORT"))
    var http: String?
}
