import ArgumentParser

struct Stack: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the embedded stack (a private PostgreSQL and a local broker) in the background.",
        subcommands: [Up.self, Down.self, Env.self])

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start the embedded stack, or reuse a running one.")
        @Option(help: "Directory of the stack (default: ./.filefleet).") var stateDir: String?
        func run() async throws { throw notBuiltYet("stack up") }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the embedded stack; its data stays.")
        @Option(help: "Directory of the stack (default: ./.filefleet).") var stateDir: String?
        func run() async throws { throw notBuiltYet("stack down") }
    }

    struct Env: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the exports that make other shells' filefleet commands use this stack.")
        @Option(help: "Directory of the stack (default: ./.filefleet).") var stateDir: String?
        func run() async throws { throw notBuiltYet("stack env") }
    }
}
