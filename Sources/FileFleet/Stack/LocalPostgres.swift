import Foundation

/// A private PostgreSQL cluster in a directory of its own: initdb on first use, a loopback port,
/// its unix socket in `<directory>/socket`. Used by the embedded stack (SPEC §8) and by tests.
/// When this process is root the server runs as the `postgres` user (initdb refuses root).
///
/// Only its owner gets in (docs/security.md): every connection, TCP or socket, authenticates with
/// SCRAM-SHA-256 as `postgres`, whose random password is in `<directory>/pgpass`, mode 0600,
/// owned by the user who made the cluster. `url` names that file (libpq's `passfile`), so the URL
/// itself carries no secret. The socket directory is 0700.
/// Its methods block: call them inside `runBlocking`.
public struct LocalPostgres: Sendable {
    public let directory: String
    public var dataDirectory: String { directory + "/data" }
    public var socketDirectory: String { directory + "/socket" }
    public var logFile: String { directory + "/postgres.log" }
    /// libpq's password file for `postgres` (`*:*:*:postgres:PASSWORD`), readable by its owner only.
    public var passwordFile: String { directory + "/pgpass" }

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

    /// A libpq URL for the superuser `postgres`, over TCP on loopback; the password comes from
    /// `passwordFile`.
    public var url: String? {
        port.map { "postgresql://postgres@127.0.0.1:\($0)/postgres?sslmode=disable&passfile=\(passwordFile)" }
    }

    /// initdb unless the cluster exists; then writes the port and `settings` into `filefleet.conf`.
    ///
    /// `trusting`: networks (CIDR) whose clients are trusted without a password, for a test
    /// network; the server must also listen there (`listen_addresses` in `settings`). `hba`: more
    /// `pg_hba.conf` lines, first (a test's `hostssl … cert`).
    public func initialize(port: Int, settings: [String: String] = [:], trusting networks: [String] = [],
                           hba: [String] = []) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        if Command.isRoot {
            try Command.run("/bin/chown", ["-R", "postgres:postgres", directory])
            _ = chown(passwordFile, 0, 0)  // the owner's, not the server's
        }
        chmod(socketDirectory, 0o700)
        let password = try password()
        // initdb into a scratch directory and rename it when complete: a process killed halfway
        // leaves no half-made cluster behind, only scratch that is removed here. Its initdb may
        // outlive it and go on writing, so each attempt has a directory of its own.
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix("data.initdb") {
            try? fm.removeItem(atPath: directory + "/" + name)
        }
        if !fm.fileExists(atPath: dataDirectory + "/PG_VERSION") {
            let scratch = directory + "/data.initdb.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
            try? fm.removeItem(atPath: dataDirectory)
            let pwfile = try serverReadable(password, name: "pwfile")
            defer { try? fm.removeItem(atPath: pwfile) }
            try run("initdb", ["-D", scratch, "-U", "postgres", "-A", "scram-sha-256", "--pwfile", pwfile, "-E", "UTF8",
                               "--no-locale", "--no-sync", "--no-instructions"])
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + "/postgresql.conf"))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("\ninclude_if_exists = 'filefleet.conf'\n".utf8))
            try handle.close()
            try fm.moveItem(atPath: scratch, toPath: dataDirectory)
        }
        // Written whole every time: a cluster made by an older FileFleet trusted every local user.
        let hbaFile = dataDirectory + "/pg_hba.conf"
        let current = (try? String(contentsOfFile: hbaFile, encoding: .utf8)) ?? ""
        let lines = hba + ["local all all scram-sha-256", "host all all 127.0.0.1/32 scram-sha-256",
                           "host all all ::1/128 scram-sha-256"] + networks.map { "host all all \($0) trust" }
        let wanted = "# Written by FileFleet (LocalPostgres.initialize): only the owner's password gets in.\n"
            + lines.joined(separator: "\n") + "\n"
        if current != wanted {
            let trusted = current.split(separator: "\n").contains { !$0.hasPrefix("#") && $0.hasSuffix(" trust") }
            if trusted && !current.hasPrefix("# Written by FileFleet") {
                try setPassword(password)  // an older cluster: its role has no password yet
            }
            try wanted.write(toFile: hbaFile, atomically: true, encoding: .utf8)
            if Command.isRoot { try Command.run("/bin/chown", ["postgres:postgres", hbaFile]) }
        }
        var all = ["port": String(port), "listen_addresses": "'127.0.0.1'",
                   "unix_socket_directories": "'\(socketDirectory)'", "max_connections": "200"]
        all.merge(settings) { _, new in new }
        let conf = all.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: "\n") + "\n"
        try conf.write(toFile: dataDirectory + "/filefleet.conf", atomically: true, encoding: .utf8)
        if Command.isRoot { try Command.run("/bin/chown", ["postgres:postgres", dataDirectory + "/filefleet.conf"]) }
    }

    /// The password of `postgres`, made at the first call and kept in `passwordFile` (0600).
    private func password() throws -> String {
        if let text = try? String(contentsOfFile: passwordFile, encoding: .utf8),
           let password = text.split(separator: ":").last.map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }),
           !password.isEmpty {
            return password
        }
        var bytes = [UInt8](repeating: 0, count: 24)
        guard getentropy(&bytes, bytes.count) == 0 else { throw StackError("no entropy for a password: \(String(cString: strerror(errno)))") }
        let password = bytes.map { String(format: "%02x", $0) }.joined()
        try writePrivately("*:*:*:postgres:\(password)\n", to: passwordFile)
        return password
    }

    /// Writes `text` to `path`, created 0600 (never readable by others, not even for a moment).
    private func writePrivately(_ text: String, to path: String) throws {
        unlink(path)
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StackError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw StackError("cannot write \(path)") }
    }

    /// A 0600 copy of `text` the server's user can read (it is `postgres` when we are root), for
    /// initdb's `--pwfile` and single-user mode's input; the caller removes it.
    private func serverReadable(_ text: String, name: String) throws -> String {
        let path = directory + "/.\(name).\(getpid())"
        try writePrivately(text, to: path)
        if Command.isRoot { try Command.run("/bin/chown", ["postgres:postgres", path]) }
        return path
    }

    /// Sets the password of `postgres` with the server stopped (single-user mode).
    private func setPassword(_ password: String) throws {
        let sql = try serverReadable("ALTER ROLE postgres PASSWORD '\(password)';\n", name: "setpassword")
        defer { try? FileManager.default.removeItem(atPath: sql) }
        try Command.run(try Self.binary("postgres"), ["--single", "-D", dataDirectory, "postgres"],
                        asUser: Command.isRoot ? "postgres" : nil, stdin: sql)
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
