import Foundation

/// The embedded default (SPEC §8): a private PostgreSQL in `<state>/postgres` and a Tansu broker
/// in `<state>/tansu`, on free loopback ports. `filefleet stack up` starts them for other shells
/// too (and marks them so: `sync` then leaves them running); a `sync` that started them stops
/// them at the end. Servers left behind by a killed run are adopted, never started twice.
/// Methods block: call them inside `runBlocking`.
public struct EmbeddedStack: Sendable {
    public let stateDirectory: String
    var postgres: LocalPostgres { LocalPostgres(directory: Self.clusterDirectory(stateDirectory + "/postgres")) }
    var tansu: LocalTansu { LocalTansu(directory: stateDirectory + "/tansu") }
    var keepMarker: String { stateDirectory + "/stack-up" }

    public init(stateDirectory: String) {
        let absolute = URL(fileURLWithPath: stateDirectory).standardizedFileURL.path
        self.stateDirectory = absolute
    }

    public struct Endpoints: Sendable {
        public var postgresURL: String
        public var kafkaBrokers: String
    }

    /// The running stack's endpoints, if both servers are up.
    public var running: Endpoints? {
        guard postgres.runningPID != nil, let url = postgres.url, let brokers = tansu.brokers else { return nil }
        return Endpoints(postgresURL: url, kafkaBrokers: brokers)
    }

    /// Whether `stack up` started the stack (then `sync` leaves it running).
    public var isKeptUp: Bool { FileManager.default.fileExists(atPath: keepMarker) }

    /// Starts what is not running, adopts what is. One process at a time (a lock file).
    public func up(keep: Bool = false) throws -> Endpoints {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        try closeToOthers()
        return try withLock {
            if keep { _ = FileManager.default.createFile(atPath: keepMarker, contents: nil) }
            let cluster = postgres
            // Adopt a server a killed run left behind only once it accepts connections.
            if cluster.runningPID != nil, !cluster.waitUntilAccepting() {
                try? cluster.stop(immediate: true)
            }
            if cluster.runningPID == nil {
                // Keep the port across restarts when it is free, so that exported URLs stay valid.
                let port: Int
                if let configured = cluster.port, !Command.isListening(port: configured) {
                    port = configured
                } else {
                    port = try Command.freeLoopbackPort()
                }
                try cluster.initialize(port: port)
                do {
                    try cluster.start()
                } catch {
                    // The port may have been taken meanwhile (by another program, or a client socket).
                    try cluster.initialize(port: try Command.freeLoopbackPort())
                    try cluster.start()
                }
            }
            let broker = tansu
            if broker.runningPID != nil, !broker.waitUntilAccepting() {
                broker.stop()
            }
            if broker.runningPID == nil {
                do {
                    try broker.start(port: try Command.freeLoopbackPort())
                } catch {
                    try broker.start(port: try Command.freeLoopbackPort())
                }
            }
            guard let endpoints = running else { throw StackError("the embedded stack in \(stateDirectory) did not come up") }
            return endpoints
        }
    }

    /// Stops both servers; the data stays in the state directory.
    public func down() throws {
        try withLock {
            tansu.stop()
            try postgres.stop()
            try? FileManager.default.removeItem(atPath: keepMarker)
        }
    }

    /// When root runs us, the server runs as `postgres`, which must be able to reach its data
    /// directory. If an ancestor of the state directory is closed to it (root's home is 0700), the
    /// cluster lives under /var/lib/filefleet and `<state>/postgres` is a symlink to it.
    static func clusterDirectory(_ wanted: String) -> String {
        guard Command.isRoot else { return wanted }
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: wanted) { return target }
        let parent = (wanted as NSString).deletingLastPathComponent
        if (try? Command.run("/usr/sbin/runuser", ["-u", "postgres", "--", "test", "-x", parent])) != nil { return wanted }
        let name = wanted.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) ? String($0) : "_" }.joined()
        let target = "/var/lib/filefleet/" + name
        try? FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try? FileManager.default.createSymbolicLink(atPath: wanted, withDestinationPath: target)
        return target
    }

    /// The state directory is its owner's alone: 0700, or, when root runs the stack and the
    /// server runs as `postgres`, 0710 with the group `postgres` (the server may pass through to
    /// its cluster, nobody may list it, others may not enter).
    private func closeToOthers() throws {
        if Command.isRoot, let group = getgrnam("postgres") {
            guard chown(stateDirectory, 0, group.pointee.gr_gid) == 0, chmod(stateDirectory, 0o710) == 0 else {
                throw StackError("cannot restrict \(stateDirectory): \(String(cString: strerror(errno)))")
            }
        } else if chmod(stateDirectory, 0o700) != 0 {
            throw StackError("cannot restrict \(stateDirectory): \(String(cString: strerror(errno)))")
        }
    }

    private func withLock<T>(_ body: () throws -> T) throws -> T {
        let fd = open(stateDirectory + "/stack.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StackError("cannot lock \(stateDirectory)/stack.lock: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw StackError("cannot lock \(stateDirectory)/stack.lock") }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}
