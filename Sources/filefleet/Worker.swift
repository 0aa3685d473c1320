import ArgumentParser

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a stateless worker until SIGTERM/SIGINT, then drain and exit 0.")

    @Option(help: "Files imported at once (default: the cores).") var concurrency: Int?
    @Option(help: "Paths per batch and per Postgres transaction (default: 500).") var batchSize: Int?
    @Option(help: "How long to wait to fill a batch, in milliseconds (default: 50).") var batchWaitMs: Int?
    @Option(help: "Seconds to finish the in-flight batch after SIGTERM (default: 20).") var drainTimeout: Double?
    @OptionGroup var connection: ConnectionOptions

    func run() async throws { throw notBuiltYet("worker") }
}
