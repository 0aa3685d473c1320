import ArgumentParser

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply FileFleet's schema to Postgres.")
    @OptionGroup var connection: ConnectionOptions
    func run() async throws { throw notBuiltYet("migrate") }
}
