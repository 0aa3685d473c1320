@testable import FileFleet
import FleetPostgres
import Foundation
import Testing
import TestSupport

/// Issue 13: a batch is first written blind (plain COPY, no lookup); any row it did not expect
/// sends it the careful way, and the outcome is the same as if it had gone that way at once.
@Suite struct BatchWriterTests {
    @Test func aBlindWriteFallsBackWheneverARowExistsAndTheOutcomeIsTheCarefulOne() async throws {
        let environment = try await TestEnvironment.shared()
        let schema = Schema(try await environment.makeSchema().name)
        let pool = PostgresPool(url: environment.postgresURL, maxConnections: 1)
        try await schema.migrate(pool)
        await pool.close()
        let tree = try ScratchTree("blind")
        let paths = (0..<6).map { "n\($0).md" }
        for path in paths { try tree.write(path, "# \(path)\n") }
        let writer = BatchWriter(schema: schema, worker: "test")

        try await FleetDB.query(environment.postgresURL) { c in
            _ = try await SourceStore(schema: schema).register(id: "s", root: tree.root, mode: .directory, on: c)
            let store = RunStore(schema: schema)
            func newRun() async throws -> (RunRecord, RunContext) {
                if let open = try await store.openRun(sourceID: "s", on: c) { try await store.finish(run: open.id, state: .completed, on: c) }
                let run = try await store.createRun(sourceID: "s", mode: .directory, pin: nil, token: 0, plan: paths,
                                                    maxFileBytes: 1 << 20, maxAttempts: 3, on: c)
                return (run, RunContext(id: run.id, sourceID: "s", root: tree.root, state: .running, maxFileBytes: 1 << 20, maxAttempts: 3))
            }
            func xmins() async throws -> [String: String] {
                Dictionary(uniqueKeysWithValues: try await c.query("""
                    SELECT path, xmin::text FROM \(unescaped: schema.documents) WHERE source_id = 's'
                    """).map { (try $0.decode(String.self, 0), try $0.decode(String.self, 1)) })
            }

            // A backfill: the first three files, blind.
            let (first, context) = try await newRun()
            let firstHalf = paths.prefix(3).map { ($0, BatchImporter.readFile($0, run: context)) }
            #expect(try await writer.write(run: first.id, sourceID: "s", outcomes: firstHalf, on: c) == OutcomeCounts(imported: 3))
            #expect(try await xmins().count == 3)

            // The same paths again (a redelivery) with three new ones: the blind COPY meets the rows
            // and rolls back; the careful way skips what is checkpointed and imports the rest.
            let before = try await xmins()
            let all = paths.map { ($0, BatchImporter.readFile($0, run: context)) }
            #expect(try await writer.write(run: first.id, sourceID: "s", outcomes: all, on: c) == OutcomeCounts(imported: 3))
            let after = try await xmins()
            #expect(after.count == 6)
            #expect(paths.prefix(3).allSatisfy { before[$0] == after[$0] }, "a checkpointed path's document was written again")

            // A new run over the same files, one of them changed: unchanged, unchanged, …, imported.
            try tree.write("n0.md", "# changed\n")
            let (second, context2) = try await newRun()
            let again = paths.map { ($0, BatchImporter.readFile($0, run: context2)) }
            // (Each case with a writer of its own: after a conflict a writer looks up for a while.)
            #expect(try await BatchWriter(schema: schema, worker: "test").write(run: second.id, sourceID: "s", outcomes: again, on: c)
                    == OutcomeCounts(imported: 1, unchanged: 5))

            // A quarantined path of the source that now imports: its failure row must go, so the
            // write may not be blind even though nothing conflicts.
            try await c.execute("""
                INSERT INTO \(unescaped: schema.failures) (source_id, path, reason, message, attempts, run_id)
                VALUES ('s', 'n6.md', 'unreadable', 'was unreadable', 3, \(second.id))
                """)
            try tree.write("n6.md", "# now readable\n")
            let (third, context3) = try await newRun()
            #expect(try await BatchWriter(schema: schema, worker: "test").write(
                run: third.id, sourceID: "s", outcomes: [("n6.md", BatchImporter.readFile("n6.md", run: context3))], on: c)
                    == OutcomeCounts(imported: 1))
            let failures = try await c.query("SELECT count(*) FROM \(unescaped: schema.failures) WHERE source_id = 's'")[0].decode(Int.self, 0)
            #expect(failures == 0, "the failure row of a path that imported stayed")
        }
    }
}
