@testable import FileFleet
import FleetCrypto
import FleetKafka
import FleetPostgres
import Foundation
import Synchronization
import Testing
import TestSupport

/// A generated tree of small markdown files and what `documents` must hold for it.
struct FleetTree: Sendable {
    let root: String
    /// path → lowercase hex SHA-256 of its bytes.
    private(set) var expected: [String: String]
    /// path → its size in bytes.
    private(set) var sizes: [String: Int] = [:]

    var sourceID: String { URL(fileURLWithPath: root).lastPathComponent }

    /// `count` markdown files with frontmatter, `perDirectory` to a directory, in a fresh temp dir.
    static func make(files count: Int, perDirectory: Int = 250, bodyBytes: Int = 200) throws -> FleetTree {
        let root = NSTemporaryDirectory() + TestEnvironment.uniqueName("fleettree")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var tree = FleetTree(root: root, expected: [:])
        tree.expected.reserveCapacity(count)
        let filler = String(repeating: "lorem ipsum dolor sit amet ", count: bodyBytes / 27 + 1).prefix(bodyBytes)
        for i in 0..<count {
            let directory = "d\(i / perDirectory)"
            if i % perDirectory == 0 { mkdir(root + "/" + directory, 0o755) }
            let text = """
                ---
                title: Note \(i)
                tags: [fleet, n\(i % 7)]
                date: 2024-01-\(String(format: "%02d", i % 28 + 1))
                ---
                # Heading \(i)

                \(filler)

                """
            try tree.write(directory + "/note-\(i).md", text)
        }
        return tree
    }

    mutating func write(_ path: String, _ text: String) throws {
        let bytes = Array(text.utf8)
        let fd = open(root + "/" + path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw POSIXError(.EIO)
        }
        expected[path] = SHA256.hex(bytes)
        sizes[path] = bytes.count
    }

    /// A file the tree holds that this type did not write (a mount inside it).
    mutating func expect(_ path: String, bytes: [UInt8]) {
        expected[path] = SHA256.hex(bytes)
        sizes[path] = bytes.count
    }

    mutating func delete(_ path: String) throws {
        guard unlink(root + "/" + path) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        expected[path] = nil
        sizes[path] = nil
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// A `filefleet` child process with its stdout and stderr in files.
final class FleetProcess: Sendable {
    let name: String
    let pid: Int32
    let stdoutPath: String
    let stderrPath: String
    private let status = Mutex<Int32?>(nil)

    /// `node`: run it inside a `NetworkLab` node.
    init(name: String, arguments: [String], directory: String, node: NetworkLab.Node? = nil) throws {
        self.name = name
        stdoutPath = directory + "/\(name).out"
        stderrPath = directory + "/\(name).err"
        // The children see the servers only through their flags.
        let command = [try FleetCLI.binary()] + arguments
        pid = try Command.spawn(node?.command(command) ?? command,
                                environment: ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("FILEFLEET_") },
                                output: stdoutPath, errorOutput: stderrPath)
    }

    /// The exit status once reaped (128 + signal when killed).
    var exitStatus: Int32? {
        status.withLock { s in
            if s != nil { return s }
            var raw: Int32 = 0
            let r = waitpid(pid, &raw, WNOHANG)
            guard r == pid else { return nil }
            let signal = raw & 0x7f
            s = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
            return s
        }
    }

    var isRunning: Bool { exitStatus == nil }

    /// Waits up to `timeout` for the exit; nil if it is still running.
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = exitStatus { return status }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return exitStatus
    }

    func send(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// SIGKILL and reap (a stopped process is continued first so that it can die).
    func killAndReap() {
        guard isRunning else { return }
        kill(pid, SIGKILL)
        kill(pid, SIGCONT)
        status.withLock { s in
            guard s == nil else { return }
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
            s = 128 + (raw & 0x7f)
        }
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// The `sync --json` summary: the last line of stdout.
    var summary: SyncSummary? {
        guard let line = stdout.split(separator: "\n").last else { return nil }
        return try? JSONDecoder().decode(SyncSummary.self, from: Data(line.utf8))
    }

    /// The last line of stdout as a JSON object (to see `reason`/`run_id` nulls as they are).
    var summaryObject: [String: Any]? {
        guard let line = stdout.split(separator: "\n").last else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }

    /// What a failed expectation should show about this process.
    var transcript: String {
        "\(name) pid \(pid) status \(exitStatus.map(String.init) ?? "running")\n--- stdout\n\(stdout.suffix(2000))\n--- stderr\n\(stderr.suffix(4000))"
    }
}

enum FleetCLI {
    /// The `filefleet` executable built next to the test bundle.
    static func binary() throws -> String {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let candidates = [
            exe.deletingLastPathComponent().appendingPathComponent("filefleet").path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(".build/debug/filefleet").path,
        ]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw UsageError("filefleet is not built (looked at \(candidates)): run `swift build --build-tests`")
        }
        return found
    }
}

/// One CLI test's fleet: a private Postgres, a fresh topic and group on the shared broker, the
/// processes it started (all killed at the end, whatever happened).
final class Fleet: Sendable {
    let postgres: PostgresServer
    let brokers: String
    let topic: String
    let group: String
    let directory: String
    private let processes = Mutex<[FleetProcess]>([])

    /// The lab whose nodes processes may run on (`start(…, node:)`); its servers listen there.
    let lab: NetworkLab?

    /// `brokers`: a broker of the test's own instead of the shared one (with `lab`, one that
    /// listens on the lab).
    init(postgresSettings: [String: String] = [:], brokers: String? = nil, lab: NetworkLab? = nil) async throws {
        let environment = try await TestEnvironment.shared()
        self.lab = lab
        postgres = try await PostgresServer.start(settings: postgresSettings, lab: lab)
        self.brokers = brokers ?? environment.kafkaBrokers
        topic = TestEnvironment.uniqueName("fleet_topic")
        group = TestEnvironment.uniqueName("fleet_group")
        directory = NSTemporaryDirectory() + TestEnvironment.uniqueName("fleetlogs")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    var connectionArguments: [String] {
        ["--postgres", postgres.url, "--kafka", brokers, "--topic", topic, "--group", group, "--partitions", "12",
         "--kafka-option", "session.timeout.ms=3000", "--kafka-option", "heartbeat.interval.ms=500"]
    }

    /// The private server's log (LocalPostgres keeps it next to the data directory).
    func serverLog() async throws -> String {
        let data = try await query { c in try await c.query("SHOW data_directory")[0].decode(String.self, 0) }
        let path = URL(fileURLWithPath: data).deletingLastPathComponent().appendingPathComponent("postgres.log").path
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    func start(_ name: String, _ arguments: [String], node: NetworkLab.Node? = nil) throws -> FleetProcess {
        var connection = connectionArguments
        if let lab, node != nil {
            connection[1] = postgres.url.replacingOccurrences(of: "127.0.0.1", with: lab.hostAddress)
        }
        let process = try FleetProcess(name: name, arguments: arguments + connection, directory: directory, node: node)
        processes.withLock { $0.append(process) }
        return process
    }

    func worker(_ name: String, batchSize: Int = 200) throws -> FleetProcess {
        try start(name, ["worker", "--batch-size", String(batchSize), "--concurrency", "2"])
    }

    /// A sync whose run always goes through Kafka, however small: these tests are about the fleet.
    func sync(_ name: String, _ tree: FleetTree, _ extra: [String] = [], node: NetworkLab.Node? = nil) throws -> FleetProcess {
        try start(name, ["sync", tree.root, "--json", "--stall-window", "10", "--direct-max", "0"] + extra, node: node)
    }

    var all: [FleetProcess] { processes.withLock { $0 } }

    /// Kills what still runs, stops the private Postgres, removes the logs unless asked to keep them.
    func shutdown() async {
        for process in all { process.killAndReap() }
        try? await postgres.stop()
        if ProcessInfo.processInfo.environment["FLEET_TEST_KEEP_LOGS"] == nil {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// A statement on a short-lived connection, retried while the server has no free slot.
    func query<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await FleetDB.query(postgres.url, body)
    }

    /// Publishes raw messages to the fleet's topic (garbage, forgeries).
    func publish(_ values: [[UInt8]?]) async throws {
        let producer = try KafkaProducer(configuration: KafkaConfiguration(brokers: brokers, clientID: "fleet-test"))
        try await producer.sendBatch(values.map { KafkaRecord(topic: topic, key: nil, value: $0) })
        await producer.close()
    }
}

enum FleetDB {
    static func query<T: Sendable>(_ url: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withRetry(RetryPolicy(maxAttempts: 100, baseDelay: .milliseconds(50), maxDelay: .milliseconds(500),
                                        totalBudget: .seconds(60))) {
            try await PostgresConnection.withConnection(url, body)
        }
    }

    /// path → sha256 of the source's documents.
    static func documents(_ schema: Schema, source: String, on c: PostgresConnection) async throws -> [String: String] {
        var rows: [String: String] = [:]
        for row in try await c.query("SELECT path, sha256 FROM \(unescaped: schema.documents) WHERE source_id = \(source)") {
            rows[try row.decode(String.self, 0)] = try row.decode(String.self, 1)
        }
        return rows
    }

    static func int(_ sql: String, on c: PostgresConnection) async throws -> Int {
        try await c.query(PostgresQuery(unsafeSQL: sql))[0].decode(Int?.self, 0) ?? 0
    }
}

/// Where documents and the tree differ, for a readable failure.
func difference(_ stored: [String: String], _ expected: [String: String]) -> String {
    let missing = expected.keys.filter { stored[$0] == nil }.sorted()
    let extra = stored.keys.filter { expected[$0] == nil }.sorted()
    let wrong = expected.keys.filter { stored[$0] != nil && stored[$0] != expected[$0] }.sorted()
    return "stored \(stored.count), expected \(expected.count); missing \(missing.count) \(missing.prefix(5)); " +
        "extra \(extra.count) \(extra.prefix(5)); wrong hash \(wrong.count) \(wrong.prefix(5))"
}

/// Stops `filefleet worker`s as an operator would: SIGTERM to each once it has logged `started`
/// (its signal handler is installed by then). Returns their exit statuses, nil for one still running.
func terminateWorkers(_ workers: [FleetProcess], timeout: Duration = .seconds(30)) async -> [Int32?] {
    _ = await fleetEventually(timeout: .seconds(60)) {
        workers.allSatisfy { !$0.isRunning || $0.stderr.contains(" event=started ") }
    }
    for worker in workers { worker.send(SIGTERM) }
    var statuses: [Int32?] = []
    for worker in workers { statuses.append(await worker.waitForExit(timeout: timeout)) }
    return statuses
}

/// Polls `condition` until it holds or `timeout` passes.
func fleetEventually(timeout: Duration, every interval: Duration = .milliseconds(100),
                _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}
