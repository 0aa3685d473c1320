import ArgumentParser
import FileFleet
import Foundation

@main
enum Main {
    static func main() async {
        if let message = FleetProcess.unsupportedLibraryMessage {
            FileHandle.standardError.write(Data("filefleet: \(message)\n".utf8))
            exit(ExitCode.usage.rawValue)
        }
        let command = CommandLine.arguments.dropFirst().first { !$0.hasPrefix("-") } ?? "filefleet"
        FleetProcess.configure(command: command, pid: getpid())
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

