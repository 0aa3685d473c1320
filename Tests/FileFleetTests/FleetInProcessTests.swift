@testable import FileFleet
import FleetKafka
import FleetPostgres
import Foundation
import Testing
import TestSupport

/// The coordinator with in-process workers (`sync --workers N`) in a schema of its own: the
/// plan of a first sync, a no-op rerun, an incremental one, and a resumed one.
@Suite struct FleetInProcessTests {
    let environment: TestEnvironment
    let schema: Schema

    init() async throws {
        environment = try await TestEnvironment.shared()
        schema = Schema(try await environment.makeSchema().name)
    }

    /// One sync with two in-process workers. Each gets a topic and group of its own: its workers
    /// all leave together at the end, which can wedge the group on Tansu (SPEC §9.1).
    func sync(_ tree: FleetTree) async throws -> SyncSummary {
        let settings = environment.fleetSettings(schema: schema)
        var options = SyncOptions()
        options.workers = 2
        options.directMax = 0  // through Kafka: these tests are about the in-process workers
        options.stallWindow = .seconds(10)
        options.pollInterval = .milliseconds(100)
        let start = ContinuousClock.now
        let summary = try await Coordinator(settings: settings, log: Log(component: "coordinator", enabled: false))
            .sync(tree.root, options: options)
        print("fleet in-process: \(summary.json()) (\(String(format: "%.2f", seconds(since: start))) s)")
        return summary
    }

    func documents(_ tree: FleetTree) async throws -> [String: String] {
        try await FleetDB.query(environment.postgresURL) { [schema] c in
            try await FleetDB.documents(schema, source: tree.sourceID, on: c)
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func fleetInProcessSyncIsIncrementalAndResumes() async throws {
        var tree = try FleetTree.make(files: 600, perDirectory: 100)
        defer { tree.remove() }

        // A first sync imports everything.
        let first = try await sync(tree)
        #expect(first.status == .completed, "\(first.json())")
        #expect(first.planned == 600 && first.imported == 600 && first.resumed == 0)
        #expect(try await documents(tree) == tree.expected)

        // Nothing changed: nothing planned.
        let noop = try await sync(tree)
        #expect(noop.status == .completed, "\(noop.json())")
        #expect(noop.planned == 0 && noop.imported == 0 && noop.deleted == 0)
        #expect(noop.run_id != first.run_id)

        // Add 3, edit 2, delete 4, touch 1 (same bytes, new mtime): exactly those are applied.
        for i in 0..<3 { try tree.write("d0/added-\(i).md", "# Added \(i)\n") }
        try tree.write("d1/note-100.md", "---\ntitle: edited\n---\nnew body\n")
        try tree.write("d2/note-200.md", "completely different\n")
        for i in 300..<304 { try tree.delete("d3/note-\(i).md") }
        var times = [timeval(tv_sec: 1_700_000_000, tv_usec: 123_456), timeval(tv_sec: 1_700_000_000, tv_usec: 123_456)]
        #expect(utimes(tree.root + "/d4/note-400.md", &times) == 0)
        // An edit that keeps the size: only the hash can tell it from a touch.
        var sameSize = Array(try String(contentsOfFile: tree.root + "/d4/note-401.md", encoding: .utf8))
        sameSize[sameSize.count - 2] = sameSize[sameSize.count - 2] == "x" ? "y" : "x"
        try tree.write("d4/note-401.md", String(sameSize))
        let incremental = try await sync(tree)
        #expect(incremental.status == .completed, "\(incremental.json())")
        #expect(incremental.planned == 10, "\(incremental.json())")
        #expect(incremental.imported == 6 && incremental.deleted == 4 && incremental.unchanged == 0 && incremental.failed == 0)
        #expect(try await documents(tree) == tree.expected)
        let touched = try await FleetDB.query(environment.postgresURL) { [schema, tree] c in
            try await c.query("""
                SELECT (extract(epoch FROM mtime) * 1000000)::bigint FROM \(unescaped: schema.documents)
                 WHERE source_id = \(tree.sourceID) AND path = 'd4/note-400.md'
                """)[0].decode(Int64.self, 0)
        }
        #expect(touched == 1_700_000_000_123_456, "a touched file's stored mtime must follow the file")

        // A run left unfinished by a killed coordinator, 4 of its 10 paths banked: the next sync
        // continues it and reports them as resumed.
        let paths = (0..<10).map { "d5/late-\($0).md" }
        for path in paths { try tree.write(path, "late \(path)\n") }
        let run = try await FleetDB.query(environment.postgresURL) { [schema, tree] c -> Int64 in
            let store = RunStore(schema: schema)
            let run = try await store.createRun(sourceID: tree.sourceID, mode: .directory, pin: nil, token: 0, plan: paths,
                                                maxFileBytes: 1 << 20, maxAttempts: 3, on: c)
            let context = RunContext(id: run.id, sourceID: tree.sourceID, root: tree.root, state: .running, maxFileBytes: 1 << 20, maxAttempts: 3)
            let banked = paths.prefix(4).map { ($0, BatchImporter.readFile($0, run: context)) }
            _ = try await BatchWriter(schema: schema, worker: "seed").write(run: run.id, sourceID: tree.sourceID,
                                                                             outcomes: banked, on: c)
            return run.id
        }
        let resumed = try await sync(tree)
        #expect(resumed.status == .completed, "\(resumed.json())")
        #expect(resumed.run_id == run)
        #expect(resumed.planned == 10 && resumed.resumed == 4 && resumed.imported == 6, "\(resumed.json())")
        #expect(try await documents(tree) == tree.expected)
    }

    /// A run with at most `directMax` paths left is imported by the coordinator without Kafka:
    /// with the broker's address pointing at nothing, a small first sync and a small incremental
    /// one (an edit, an addition, a deletion, a file that cannot be read) still complete, and
    /// their checkpoints are the coordinator's own.
    @Test(.timeLimit(.minutes(2)))
    func smallRunsAreImportedWithoutKafka() async throws {
        var tree = try FleetTree.make(files: 40, perDirectory: 10)
        defer { tree.remove() }
        var settings = environment.fleetSettings(schema: schema)
        settings.kafka = KafkaConfiguration(brokers: "127.0.0.1:1")  // nothing listens there
        var options = SyncOptions()
        options.workers = 2
        options.directMax = 40
        let coordinator = Coordinator(settings: settings, log: Log(component: "coordinator", enabled: false))

        let first = try await coordinator.sync(tree.root, options: options)
        #expect(first.status == .completed && first.imported == 40, "\(first.json())")
        #expect(try await documents(tree) == tree.expected)

        try tree.write("d0/note-0.md", "---\ntitle: edited\n---\nnew\n")
        try tree.write("d0/added.md", "# Added\n")
        try tree.delete("d1/note-10.md")
        try tree.write("d2/locked.md", "secret\n")
        #expect(chmod(tree.root + "/d2/locked.md", 0) == 0)
        options.maxAttempts = 1
        let incremental = try await coordinator.sync(tree.root, options: options)
        let unreadable = getuid() != 0  // root reads a file of mode 0 all the same
        #expect(incremental.planned == 4, "\(incremental.json())")
        #expect(incremental.deleted == 1 && incremental.failed == (unreadable ? 1 : 0), "\(incremental.json())")
        #expect(incremental.status == (unreadable ? .completed_with_failures : .completed), "\(incremental.json())")
        let workers = try await FleetDB.query(environment.postgresURL) { [schema] c in
            try await c.query("SELECT DISTINCT worker FROM \(unescaped: schema.checkpoints)").map { try $0.decode(String.self, 0) }
        }
        #expect(!workers.isEmpty && workers.allSatisfy { $0.hasPrefix("sync:") }, "\(workers)")
        if !unreadable { #expect(try await documents(tree) == tree.expected) }

        // One path more than the limit, without in-process workers: the run is for Kafka, which
        // is not there; it must not complete (it would only if it had been imported directly).
        for i in 0..<41 { try tree.write("d3/more-\(i).md", "more \(i)\n") }
        var external = options
        external.workers = 0
        external.noWorkerTimeout = .seconds(1)
        let task = Task { [external, root = tree.root] in try await coordinator.sync(root, options: external) }
        try await Task.sleep(for: .seconds(3))
        task.cancel()
        let big = try await task.value
        #expect(big.status != .completed, "\(big.json())")

        // The same run with in-process workers: they never get partitions (no broker), and while
        // they are joining the coordinator imports the run itself, so it completes.
        let joining = try await coordinator.sync(tree.root, options: options)
        #expect(joining.imported == 41 && joining.status == (unreadable ? .completed_with_failures : .completed),
                "\(joining.json())")
        if !unreadable { #expect(try await documents(tree) == tree.expected) }
    }
}
