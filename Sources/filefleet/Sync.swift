import ArgumentParser

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Coordinate one run for SOURCE until it completes.",
        discussion: """
            SOURCE is a directory; a git work tree is synced incrementally from its bookmark commit. \
            Exit codes: 0 completed or skipped (another live holder has the lease), 2 usage, \
            3 completed with quarantined failures, 4 aborted (lease lost, Postgres unavailable), 130/143 interrupted.
            """)

    @Argument(help: "The directory to import.") var source: String
    @Option(help: "Source id (default: the directory's base name).") var sourceId: String?
    @Option(help: "Only paths matching this glob (repeatable).") var include: [String] = []
    @Option(help: "Skip paths matching this glob (repeatable).") var exclude: [String] = []
    @Option(help: "In-process workers (default: 0 with Postgres and Kafka configured, the cores in embedded mode).")
    var workers: Int?
    @Flag(help: "Print the summary as one JSON object, the last line of stdout.") var json = false
    @Option(help: "Files larger than this are quarantined (default: 64 MiB).") var maxFileBytes: Int?
    @Option(help: "Attempts before a failing file is quarantined (default: 3).") var maxAttempts: Int?
    @Option(help: "Lease heartbeat interval in seconds (default: 5).") var heartbeat: Double?
    @Option(help: "Lease time to live in seconds (default: 30).") var leaseTtl: Double?
    @Option(help: "Takeover grace in seconds (default: 3 heartbeats).") var takeoverGrace: Double?
    @Option(help: "Republish remaining paths after this many seconds without progress (default: 30).")
    var stallWindow: Double?
    @OptionGroup var connection: ConnectionOptions

    func run() async throws { throw notBuiltYet("sync") }
}
