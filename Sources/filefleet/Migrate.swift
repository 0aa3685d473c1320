import ArgumentParser
import FileFleet
import FleetPostgres

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply FileFleet's schema to Postgres.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await withUsageErrors {
            let settings = try await Servers.forTools(connection)
            let pool = PostgresPool(url: settings.postgresURL, maxConnections: 1)
            let applied = try await settings.schema.migrate(pool)
            await pool.close()
            printError(applied.isEmpty ? "schema \(settings.schema.name) is current" : "applied migrations \(applied) to schema \(settings.schema.name)")
        }
    }
}
