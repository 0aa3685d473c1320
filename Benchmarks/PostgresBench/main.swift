// Rows/s through FleetPostgres (single-row inserts, multi-row inserts, COPY) against the same
// COPY through psql, in one run. Usage: postgres-bench [URL]   (no URL: a private cluster)
import FleetPostgres
import Foundation

let pgBin = ProcessInfo.processInfo.environment["PG_BIN"] ?? "/usr/lib/postgresql/15/bin"

/// Runs a program to completion (posix_spawn + waitpid: Foundation's Process can miss the exit).
@discardableResult
func run(_ argv: [String], stdinPath: String? = nil) throws -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, stdinPath ?? "/dev/null", O_RDONLY, 0)
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArgs, environ)
    guard spawned == 0 else { throw BenchError("cannot run \(argv[0]): errno \(spawned)") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    guard status == 0 else { throw BenchError("\(argv.joined(separator: " ")) failed: status \(status)") }
    return status
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A throwaway cluster on a unix socket in a temp dir, run as `postgres` when we are root.
struct PrivateCluster {
    let dir: String
    var url: String { "host=\(dir) port=5432 user=postgres dbname=postgres" }
    var asPostgres: [String] { getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : [] }

    static func start() throws -> PrivateCluster {
        let dir = NSTemporaryDirectory() + "pgbench-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let cluster = PrivateCluster(dir: dir)
        if getuid() == 0 { try run(["/bin/chown", "postgres:postgres", dir]) }
        try run(cluster.asPostgres + ["\(pgBin)/initdb", "-D", "\(dir)/data", "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
        try run(cluster.asPostgres + ["\(pgBin)/pg_ctl", "-D", "\(dir)/data", "-l", "\(dir)/log", "-w", "-o",
                                      "-c listen_addresses= -k \(dir) -p 5432", "start"])
        return cluster
    }

    func stop() {
        _ = try? run(asPostgres + ["\(pgBin)/pg_ctl", "-D", "\(dir)/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: dir)
    }
}

func row(_ i: Int) -> (Int, String, String, Int32) {
    (i, "notes/dir\(i % 97)/file-\(i).md", String(repeating: "lorem ipsum \(i) ", count: 8), Int32(i % 1000))
}

func timed(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    return (ContinuousClock.now - start).seconds
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

let argumentURL = CommandLine.arguments.dropFirst().first
let cluster = argumentURL == nil ? try PrivateCluster.start() : nil
defer { cluster?.stop() }
let url = argumentURL ?? cluster!.url

let singleRows = 5_000, multiRows = 100_000, batch = 100, copyRows = 200_000

/// The workload runs off the main actor, as importers do.
@concurrent
func measure(url: String) async throws -> (single: Double, multi: Double, copy: Double, psql: Double) {
    let data = (0..<copyRows).map(row)  // built before any timing
    let conn = try await PostgresConnection.connect(url)
    try await conn.executeScript("""
        DROP TABLE IF EXISTS bench;
        CREATE TABLE bench (id bigint, path text, body text, n int)
        """)
    func reset() async throws { try await conn.execute("TRUNCATE bench") }

    // 1. One INSERT (own transaction) per row.
    try await reset()
    let single = try await timed {
        for i in 0..<singleRows {
            let r = data[i]
            try await conn.execute("INSERT INTO bench (id, path, body, n) VALUES (\(r.0), \(r.1), \(r.2), \(r.3))")
        }
    }

    // 2. Multi-row INSERTs, `batch` rows per statement.
    try await reset()
    let multi = try await timed {
        for start in stride(from: 0, to: multiRows, by: batch) {
            var sql = PostgresQuery.StringInterpolation(literalCapacity: 64 * batch, interpolationCount: 4 * batch)
            sql.appendLiteral("INSERT INTO bench (id, path, body, n) VALUES ")
            for i in start..<start + batch {
                let r = data[i]
                if i > start { sql.appendLiteral(", ") }
                sql.appendLiteral("(")
                sql.appendInterpolation(r.0); sql.appendLiteral(", ")
                sql.appendInterpolation(r.1); sql.appendLiteral(", ")
                sql.appendInterpolation(r.2); sql.appendLiteral(", ")
                sql.appendInterpolation(r.3); sql.appendLiteral(")")
            }
            try await conn.execute(PostgresQuery(stringInterpolation: sql))
        }
    }

    // 3. COPY through FleetPostgres.
    try await reset()
    let copy = try await timed {
        try await conn.copyFrom("COPY bench (id, path, body, n) FROM STDIN") { writer in
            for i in 0..<copyRows {
                let r = data[i]
                try await writer.writeRow(r.0, r.1, r.2, r.3)
            }
        }
    }

    // 4. The same rows through psql's COPY FROM STDIN (file prepared beforehand, not timed).
    try await reset()
    let dataFile = NSTemporaryDirectory() + "pgbench-rows-\(getpid()).tsv"
    var text = ""
    for i in 0..<copyRows {
        let r = data[i]
        text += "\(r.0)\t\(r.1)\t\(r.2)\t\(r.3)\n"
    }
    try text.write(toFile: dataFile, atomically: false, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: dataFile) }
    let psql = try await timed {
        try run(["\(pgBin)/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                 "COPY bench (id, path, body, n) FROM STDIN"], stdinPath: dataFile)
    }
    let copied = try await conn.query("SELECT count(*) FROM bench").first!.decode(Int.self, 0)
    precondition(copied == copyRows, "psql copied \(copied) rows")
    await conn.close()

    return (single, multi, copy, psql)
}

let (single, multi, copy, psql) = try await measure(url: url)
let rates = [("single-row INSERT (autocommit)", Double(singleRows) / single),
             ("multi-row INSERT (\(batch)/stmt)", Double(multiRows) / multi),
             ("COPY via FleetPostgres", Double(copyRows) / copy),
             ("COPY via psql", Double(copyRows) / psql)]
let psqlRate = rates[3].1
print("libpq \(LibPQ.version); rows of ~150 bytes; fsync on")
for (name, rate) in rates {
    let padded = name.padding(toLength: 34, withPad: " ", startingAt: 0)
    print("\(padded) \(String(format: "%10.0f", rate)) rows/s   \(String(format: "%5.3f", rate / psqlRate)) × psql COPY")
}
