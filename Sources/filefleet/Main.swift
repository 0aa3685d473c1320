import ArgumentParser
import FileFleet
import FleetKafka
import FleetPostgres
import Foundation

@main
enum Main {
    static func main() async {
        guard LibRdKafka.isSupported else {
            FileHandle.standardError.write(Data("""
                filefleet: librdkafka \(LibRdKafka.versionString) is loaded, but FileFleet needs 2.10.1 or newer: \
                run scripts/setup (it builds 2.14.2 into /usr/local) or point LD_LIBRARY_PATH at a librdkafka ≥ 2.10.1\n
                """.utf8))
            exit(ExitCode.usage.rawValue)
        }
        let command = CommandLine.arguments.dropFirst().first { !$0.hasPrefix("-") } ?? "filefleet"
        PostgresConnection.applicationName = "filefleet \(command) \(getpid())"
        RetryLogging.install()
        await FileFleetCommand.main()
    }
}

struct FileFleetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filefleet",
        abstract: "Import huge file trees into PostgreSQL with a fleet of stateless workers, and keep them in sync.",
        discussion: """
            With neither --postgres nor --kafka configured, `filefleet sync DIR` runs on this machine alone: \
            it starts a private PostgreSQL and a local Kafka-protocol broker under --state-dir.
            """,
        version: FileFleetVersion.string,
        subcommands: [Sync.self, Worker.self, Status.self, Stack.self, Lease.self, Migrate.self])
}

extension ExitCode {
    static let usage = ExitCode(2)
}

