import FleetPostgres
import TestSupport
import Testing

@Test func concurrentMigratorsApplyEachMigrationOnce() async throws {
    let env = try await TestEnvironment.shared()
    let schema = TestEnvironment.uniqueName("mig")
    let migrations = [
        Migration(version: 2, name: "add column", sql: "ALTER TABLE items ADD COLUMN note text; INSERT INTO items VALUES (1, 'one')"),
        Migration(version: 1, name: "create", sql: "CREATE TABLE items (id int PRIMARY KEY); SELECT pg_sleep(0.3)"),
        Migration(version: 3, name: "index", sql: "CREATE INDEX items_note ON items (note)"),
    ]
    let migrator = Migrator(schema: schema, migrations: migrations)
    let a = try await PostgresConnection.connect(env.postgresURL)
    let b = try await PostgresConnection.connect(env.postgresURL)
    async let first = migrator.migrate(on: a)
    async let second = migrator.migrate(on: b)
    let (x, y) = try await (first, second)
    #expect((x + y).sorted() == [1, 2, 3])
    #expect(x.isEmpty || y.isEmpty)
    let versions = try await a.query("SELECT version, name FROM \(unescaped: schema).schema_migrations ORDER BY version")
    #expect(try versions.map { try $0.decode(Int.self, 0) } == [1, 2, 3])
    #expect(try versions.map { try $0.decode(String.self, "name") } == ["create", "add column", "index"])
    #expect(try await a.query("SELECT note FROM \(unescaped: schema).items")[0].decode(String.self, 0) == "one")

    // Idempotent; a later migration is applied alone; a failing one leaves nothing behind.
    #expect(try await migrator.migrate(on: b).isEmpty)
    let more = Migrator(schema: schema, migrations: migrations + [
        Migration(version: 4, name: "more", sql: "INSERT INTO items VALUES (2, 'two')"),
        Migration(version: 5, name: "broken", sql: "INSERT INTO items VALUES (3, 'three'); SELECT 1/0"),
    ])
    await #expect(throws: PostgresError.self) { try await more.migrate(on: a) }
    #expect(try await a.query("SELECT count(*) FROM \(unescaped: schema).items")[0].decode(Int.self, 0) == 2)
    #expect(try await a.query("SELECT max(version) FROM \(unescaped: schema).schema_migrations")[0].decode(Int.self, 0) == 4)
    // The advisory lock was released: another session can take it at once.
    #expect(try await b.query("SELECT pg_try_advisory_lock(\(more.lockKey))")[0].decode(Bool.self, 0))
    await a.close()
    await b.close()
}
