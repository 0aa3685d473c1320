import Foundation

/// A private PostgreSQL cluster in a directory of its own: initdb on first use, a loopback port,
/// its unix socket in `<directory>/socket`. Used by the embedded stack (SPEC §8) and by tests.
/// When this process is root the server runs as the `postgres` user (initdb refuses root).
/// Its methods block: call them inside `runBlocking`.
public struct LocalPostgres: Sendable {
    public let directory: String
    public var dataDirectory: String { directory + "/data" }
    public var socketDirectory: String { directory + "/socket" }
    public var logFile: String { directory + "/postgres.log" }

    public init(directory: String) {
        self.directory = directory
    }

    /// The port the cluster is configured for, once `initialize` ran.
    public var port: Int? {
        guard let text = try? String(contentsOfFile: dataDirectory + "/filefleet.conf", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").lazy.compactMap { line -> Int? in
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            return parts.count == 2 && parts[0] == "port" ? Int(parts[1]) : nil
        }.first
    }

    /// A libpq URL for the superuser `postgres`, over TCP on loopback.
    public var url: String? { port.map { "postgresql://postgres@127.0.0.1:\($0)/postgres?sslmode=disable" } }

    /// initdb unless the cluster exists; then writes the port and `settings` into `filefleet.conf`.
    ///
    /// `trusting`: networks (CIDR) whose clients are trusted too, for a test network; the server
    /// must also listen there (`listen_addresses` in `settings`).
    public func initialize(port: Int, settings: [String: String] = [:], trusting networks: [String] = []) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        if Command.isRoot { try Command.run("/bin/chown", ["-R", "postgres:postgres", directory]) }
        // initdb into a scratch directory and rename it when complete: a process killed halfway
        // leaves no half-made cluster behind, only scratch that is removed here. Its initdb may
        // outlive it and go on writing, so each attempt has a directory of its own.
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix("data.initdb") {
            try? fm.removeItem(atPath: directory + "/" + name)
        }
        if !fm.fileExists(atPath: dataDirectory + "/PG_VERSION") {
            let scratch = directory + "/data.initdb.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
            try? fm.removeItem(atPath: dataDirectory)
            try run("initdb", ["-D", scratch, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                               "--no-locale", "--no-sync", "--no-instructions"])
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + "/postgresql.conf"))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("\ninclude_if_exists = 'filefleet.conf'\n".utf8))
            try handle.close()
            try fm.moveItem(atPath: scratch, toPath: dataDirectory)
        }
        if !networks.isEmpty {
            let hba = dataDirectory + "/pg_hba.conf"
            let current = try String(contentsOfFile: hba, encoding: .utf8)
            let missing = networks.filter { !current.contains("host all all \($0) trust") }
            try (current + missing.map { "host all all \($0) trust\n" }.joined()).write(toFile: hba, atomically: true, encoding: .utf8)
            if Command.isRoot { try Command.run("/bin/chown", ["postgres:postgres", hba]) }
        }
        var all = ["port": String(port), "listen_addresses": "'127.0.0.1'",
                   "unix_socket_directories": "'\(socketDirectory)'", "max_connections": "200"]
        all.merge(settings) { _, new in new }
        let conf = all.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: "\n") + "\n"
        try conf.write(toFile: dataDirectory + "/filefleet.conf", atomically: true, encoding: .utf8)
        if Command.isRoot { try Command.run("/bin/chown", ["postgres:postgres", dataDirectory + "/filefleet.conf"]) }
    }

    /// Starts the server and waits until it accepts connections.
    public func start() throws {
        try run("pg_ctl", ["-D", dataDirectory, "-l", logFile, "-w", "-t", "60", "start"])
    }

    /// Waits until a running server (say, one a killed process had just started) accepts
    /// connections on its port; false if it does not within `seconds`.
    public func waitUntilAccepting(seconds: Double = 30) -> Bool {
        guard let port else { return false }
        return Command.waitForPort(port, seconds: seconds) { runningPID != nil }
    }

    public func restart() throws {
        try run("pg_ctl", ["-D", dataDirectory, "-l", logFile, "-w", "-t", "60", "-m", "fast", "restart"])
    }

    /// Stops the server; `immediate` skips the shutdown checkpoint (what a crash would leave).
    public func stop(immediate: Bool = false) throws {
        guard runningPID != nil else { return }
        try run("pg_ctl", ["-D", dataDirectory, "-w", "-t", "60", "-m", immediate ? "immediate" : "fast", "stop"])
    }

    /// The postmaster's pid when one is alive for this data directory.
    public var runningPID: Int32? {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let first = text.split(separator: "\n").first, let pid = Int32(first) else { return nil }
        return Command.isAlive(pid) ? pid : nil
    }

    private func run(_ tool: String, _ arguments: [String]) throws {
        try Command.run(try Self.binary(tool), arguments, asUser: Command.isRoot ? "postgres" : nil)
    }

    /// The server binaries: `FILEFLEET_PG_BINDIR`, then `pg_config --bindir`, then the newest
    /// `/usr/lib/postgresql/*/bin` (Debian's pg_config belongs to libpq-dev and may point elsewhere).
    public static func binary(_ tool: String) throws -> String {
        var candidates: [String] = []
        if let dir = ProcessInfo.processInfo.environment["FILEFLEET_PG_BINDIR"] { candidates.append(dir) }
        if let dir = try? Command.run("/usr/bin/env", ["pg_config", "--bindir"]) {
            candidates.append(dir.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        candidates += versions.sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }.map { "/usr/lib/postgresql/\($0)/bin" }
        for dir in candidates where FileManager.default.isExecutableFile(atPath: dir + "/" + tool) {
            return dir + "/" + tool
        }
        throw StackError("PostgreSQL server binary '\(tool)' not found (install Debian's postgresql package, or set FILEFLEET_PG_BINDIR)")
    }
}

/// A failure to start or find a local server, in words a user can act on.
public struct StackError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
