import ArgumentParser
import FileFleet
import Foundation

struct Lease: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operator tools for the single-flight leases.",
        subcommands: [List.self, Release.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List leases: name, holder, token, heartbeat age, expires in.")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await withUsageErrors {
                let database = try await Servers.database(connection)
                let leases = try await database.leases()
                print(Status.table(["NAME", "HOLDER", "TOKEN", "HEARTBEAT AGE", "EXPIRES IN"], leases.map { lease in
                    [lease.name, lease.holder ?? "-", String(lease.token),
                     lease.holder == nil ? "-" : lease.heartbeatAge.map { String(format: "%.1fs", $0) } ?? "never",
                     lease.holder == nil ? "-" : lease.expiresIn.map { String(format: "%.1fs", $0) } ?? "-"]
                }), terminator: "")
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Release a lease; the token is bumped, so the old holder is fenced.")
        @Argument(help: "The lease, e.g. sync:notes.") var name: String
        @Flag(help: "Required: release even though a holder may be alive.") var force = false
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await withUsageErrors {
                guard force else { throw UsageError("lease release needs --force: the holder may be alive, and it will be fenced") }
                let database = try await Servers.database(connection)
                guard let before = try await database.forceRelease(name) else {
                    throw UsageError("no lease named \(name) (see `filefleet lease list`)")
                }
                printError("released \(name): was held by \(before.holder ?? "nobody") with token \(before.token); token is now \(before.token + 1)")
            }
        }
    }

}
