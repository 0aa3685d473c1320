import ArgumentParser
import FileFleet
import Foundation

struct Stack: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the embedded stack (a private PostgreSQL and a local broker) in the background.",
        subcommands: [Up.self, Down.self, Env.self])

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start the embedded stack, or reuse a running one.")
        @Option(help: "Directory of the stack (env FILEFLEET_STATE_DIR, default ./.filefleet).") var stateDir: String?

        func run() async throws {
            try await withUsageErrors {
                let stack = EmbeddedStack(stateDirectory: Stack.directory(stateDir))
                let endpoints = try await runBlocking { try stack.up(keep: true) }
                printError("embedded stack up in \(stack.stateDirectory): postgres \(endpoints.postgresURL), kafka \(endpoints.kafkaBrokers)")
                print(Stack.exports(endpoints, stateDirectory: stack.stateDirectory))
            }
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the embedded stack; its data stays.")
        @Option(help: "Directory of the stack (env FILEFLEET_STATE_DIR, default ./.filefleet).") var stateDir: String?

        func run() async throws {
            try await withUsageErrors {
                let stack = EmbeddedStack(stateDirectory: Stack.directory(stateDir))
                try await runBlocking { try stack.down() }
                printError("embedded stack in \(stack.stateDirectory) stopped")
            }
        }
    }

    struct Env: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the exports that make other shells' filefleet commands use this stack: eval \"$(filefleet stack env)\".")
        @Option(help: "Directory of the stack (env FILEFLEET_STATE_DIR, default ./.filefleet).") var stateDir: String?

        func run() async throws {
            try await withUsageErrors {
                let stack = EmbeddedStack(stateDirectory: Stack.directory(stateDir))
                guard let endpoints = try await runBlocking({ stack.running }) else {
                    throw UsageError("the embedded stack in \(stack.stateDirectory) is not running: start it with `filefleet stack up`")
                }
                print(Stack.exports(endpoints, stateDirectory: stack.stateDirectory))
            }
        }
    }

    static func directory(_ flag: String?) -> String {
        flag ?? ProcessInfo.processInfo.environment["FILEFLEET_STATE_DIR"] ?? "./.filefleet"
    }

    /// The state directory too: a `sync` that finds its servers are this stack runs in-process workers.
    static func exports(_ endpoints: EmbeddedStack.Endpoints, stateDirectory: String) -> String {
        "export FILEFLEET_POSTGRES_URL='\(endpoints.postgresURL)' FILEFLEET_KAFKA_BROKERS='\(endpoints.kafkaBrokers)' "
            + "FILEFLEET_STATE_DIR='\(stateDirectory)'"
    }
}
