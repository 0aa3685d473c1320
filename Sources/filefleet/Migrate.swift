import ArgumentParser
import FileFleet

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply FileFleet's schema to Postgres.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await withUsageErrors {
            let database = try await Servers.database(connection)
            let applied = try await database.migrate()
            printError(applied.isEmpty ? "schema \(database.schema.name) is current" : "applied migrations \(applied) to schema \(database.schema.name)")
        }
    }
}
