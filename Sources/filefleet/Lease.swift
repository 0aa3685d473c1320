import ArgumentParser

struct Lease: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operator tools for the single-flight leases.",
        subcommands: [List.self, Release.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List leases: name, holder, token, heartbeat age, expires in.")
        @OptionGroup var connection: ConnectionOptions
        func run() async throws { throw notBuiltYet("lease list") }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Release a lease; the token is bumped, so the old holder is fenced.")
        @Argument(help: "The lease, e.g. sync:notes.") var name: String
        @Flag(help: "Required: release even though a holder may be alive.") var force = false
        @OptionGroup var connection: ConnectionOptions
        func run() async throws { throw notBuiltYet("lease release") }
    }
}
