import ArgumentParser

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show runs, progress, leases, live workers and the newest failures, per source.")

    @Option(help: "Only this source.") var sourceId: String?
    @Flag(help: "Print JSON instead of a table.") var json = false
    @OptionGroup var connection: ConnectionOptions

    func run() async throws { throw notBuiltYet("status") }
}
