import FleetKafka
import FleetPostgres
import Foundation
import Testing
@testable import FileFleet

/// Random file contents and forged messages on the topic the workers consume (SPEC §6.8, §6.10):
/// the workers neither crash nor write a row outside the plan of the run a message names.
@Suite struct HostileFuzzTests {
    @Test func randomContentsAndForgedMessagesNeverEscape() async throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var rng = SplitMix64(seed: seed)
        let fleet = try await HostileFleet()
        let settings = fleet.settings()
        let tree = try HostileBase("fuzz")
        let victim = try HostileBase("victim")
        try victim.write("victim.md", "# victim\n")

        // Random bytes, some dressed as frontmatter; one escaping link; a hidden file with the secret.
        var files: [String] = []
        let extensions = [".md", ".txt", ".bin", "", ".markdown"]
        for i in 0..<40 {
            let path = (i % 4 == 0 ? "sub \(i % 3)/" : "") + "f\(i)" + extensions[Int.random(in: 0..<extensions.count, using: &rng)]
            var bytes = (0..<Int.random(in: 0...3000, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if i % 3 == 0 {
                let yaml = (0..<Int.random(in: 0...200, using: &rng)).map { _ in
                    Array(":-[]{}#&*!|>'\"%@` \n\tabc123é".utf8).randomElement(using: &rng)!
                }
                bytes = Array("---\ntitle: ".utf8) + yaml + Array("\n---\n".utf8) + (i % 2 == 0 ? bytes : Array("# T\n".utf8))
            }
            try tree.write(path, bytes)
            files.append(path)
        }
        try tree.link("leak.md", "../outside/secret.txt")
        try tree.write(".hidden-secret.md", "# \(tree.secret)\n")

        let pool = PostgresPool(url: settings.postgresURL, maxConnections: 2)
        try await fleet.schema.migrate(pool)
        defer { Task { await pool.close() } }
        let store = RunStore(schema: fleet.schema)
        let (run, victimRun, planned) = try await fleet.withConnection { c in
            _ = try await SourceStore(schema: store.schema).register(id: "fuzz", root: tree.root, mode: .directory, on: c)
            _ = try await SourceStore(schema: store.schema).register(id: "victim", root: victim.root, mode: .directory, on: c)
            let plan = try await DirectoryPlanner(schema: fleet.schema).plan(sourceID: "fuzz", root: tree.root,
                                                                           filter: PathFilter(), on: c, counting: pool)
            let run = try await store.createRun(sourceID: "fuzz", staged: plan, token: 0,
                                                maxFileBytes: 1 << 20, maxAttempts: 1, on: c)
            let victimRun = try await store.createRun(sourceID: "victim", mode: .directory, pin: nil, token: 0,
                                                      plan: ["victim.md"], maxFileBytes: 1 << 20, maxAttempts: 1, on: c)
            let planned = try await c.query("SELECT path FROM \(unescaped: fleet.schema.plannedPaths) WHERE run_id = \(run.id)")
                .map { try $0.decode(String.self, 0) }
            return (run, victimRun, Set(planned))
        }
        #expect(planned == Set(files + ["leak.md"]))

        // Every forged message must be refused: undecodable, unknown run, wrong source, bad or unplanned path.
        func message(_ run: Int64, _ source: String, _ path: String) -> [UInt8]? {
            PathMessage(run: run, source: source, path: path).encoded()
        }
        var forged: [[UInt8]?] = [nil, [], Array(repeating: 0x7b, count: 70_000),
                                  Array(#"{"run":0,"source":"fuzz","path":"f1.md"}"#.utf8),
                                  Array(#"{"run":\#(run.id),"source":"","path":"f1.md"}"#.utf8),
                                  Array(#"{"run":\#(run.id),"source":"fuzz"}"#.utf8),
                                  Array(#"{"run":"\#(run.id)","source":"fuzz","path":"f1.md"}"#.utf8),
                                  message(run.id, "fuzz", String(repeating: "long/", count: 14_000) + "x")]
        for _ in 0..<60 {
            forged.append((0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
        let parts = ["..", ".", "", "/", "\u{0}", "é", "e\u{301}", " ", "\n", "f1.md", "leak.md", ".hidden-secret.md",
                     "outside", "secret.txt", tree.base, tree.root, "sub 0", "\\", "%2e%2e", String(repeating: "n", count: 300)]
        var paths = ["../outside/secret.txt", tree.secretPath, "/etc/passwd", ".hidden-secret.md", "sub 0/../leak.md",
                     "./f1.md", "f1.md/", "leak.md/x", "victim.md", "x\u{0}y", String(repeating: "deep/", count: 900) + "z"]
        for _ in 0..<80 {
            let picks = (0..<Int.random(in: 1...6, using: &rng)).map { _ in parts.randomElement(using: &rng)! }
            paths.append(picks.joined(separator: Bool.random(using: &rng) ? "/" : ""))
        }
        var distinct = Set<[UInt8]>()  // a duplicate in one batch is dropped, not refused
        for path in paths where !planned.contains(path) && !path.isEmpty && distinct.insert(Array(path.utf8)).inserted {
            forged.append(message(run.id, "fuzz", path))
            forged.append(message(999_999_999, "fuzz", path))
        }
        for path in files.prefix(10) {
            forged.append(message(run.id, "victim", path))     // another source, this run
            forged.append(message(victimRun.id, "victim", path))  // another run's plan does not have it
            forged.append(message(victimRun.id, "fuzz", path))  // the run's source is not "fuzz"
        }
        let genuine = planned.map { message(run.id, "fuzz", $0) } + files.prefix(5).map { message(run.id, "fuzz", $0) }
        let records = (forged + genuine).shuffled(using: &rng).map {
            KafkaRecord(topic: settings.topic, key: Array("fuzz".utf8), value: $0)
        }
        _ = try await KafkaAdmin(configuration: settings.kafka).createTopic(settings.topic, partitions: settings.partitions)
        let producer = try KafkaProducer(configuration: settings.kafka)
        try await producer.sendBatch(records)
        await producer.close()

        var options = WorkerOptions()
        options.concurrency = 1
        options.batchSize = 50
        let workers = (0..<2).map { _ in Worker(settings: settings, options: options) }
        let running = workers.map { worker in Task { try await worker.run() } }
        let deadline = ContinuousClock.now + .seconds(90)
        var done = 0
        while ContinuousClock.now < deadline {
            done = try await fleet.withConnection { c in try await CheckpointStore(schema: store.schema).count(run: run.id, on: c) }
            if done == planned.count && workers.map(\.refused).reduce(0, +) >= forged.count { break }
            try await Task.sleep(for: .milliseconds(300))
        }
        workers.forEach { $0.requestStop() }
        for task in running { try await task.value }  // a crash or an error would surface here

        let note = Comment(rawValue: "seed \(seed)")
        #expect(done == planned.count, note)
        #expect(workers.map(\.refused).reduce(0, +) >= forged.count, note)
        let rows = try await fleet.documents()
        #expect(rows.paths == Set(files.map { Array($0.utf8) }), note)
        for row in rows.all {
            let path = row.path
            #expect(row.sourceID == "fuzz", note)
            #expect(try await fleet.matchesImporter(row, bytes: try tree.bytes(path)), "\(path) \(note)")
        }
        let failures = try await fleet.failures("fuzz")
        #expect(failures.mapValues(\.reason) == ["leak.md": "escapes_root"], note)
        #expect(try await fleet.failures("victim").isEmpty, note)
        #expect(try await fleet.rowsContaining(tree.secret, hashOf: Array(tree.secret.utf8)) == 0, note)
        #expect(try await fleet.unplannedCheckpoints() == 0, note)
        let victimDone = try await fleet.withConnection { c in try await CheckpointStore(schema: store.schema).count(run: victimRun.id, on: c) }
        #expect(victimDone == 0, note)
    }
}
