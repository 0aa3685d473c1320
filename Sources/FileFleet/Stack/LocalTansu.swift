import Foundation

/// A local Tansu broker (SPEC §9.1): memory storage, one loopback port, pid file and log in
/// `directory`. Its data is gone when it stops. Methods block: call them inside `runBlocking`.
public struct LocalTansu: Sendable {
    public let directory: String
    public var pidFile: String { directory + "/tansu.pid" }
    public var portFile: String { directory + "/tansu.port" }
    public var logFile: String { directory + "/tansu.log" }

    public init(directory: String) {
        self.directory = directory
    }

    /// `127.0.0.1:PORT` of the running broker, if one is alive.
    public var brokers: String? {
        guard runningPID != nil, let port else { return nil }
        return "127.0.0.1:\(port)"
    }

    /// The port the broker was last started on.
    var port: Int? {
        guard let text = try? String(contentsOfFile: portFile, encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Waits until a running broker (say, one a killed process had just started) accepts
    /// connections on its port; false if it does not within `seconds`.
    public func waitUntilAccepting(seconds: Double = 5) -> Bool {
        guard let port else { return false }
        return Command.waitForPort(port, seconds: seconds) { runningPID != nil }
    }

    public var runningPID: Int32? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
              Command.isAlive(pid),
              let cmdline = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
              cmdline.contains("tansu") else { return nil }
        return pid
    }

    /// Starts the broker on `port` in the background and waits until it accepts connections.
    /// With `advertisedHost` (a test network's address) it listens on every interface and tells
    /// clients to connect to that host; otherwise it is on loopback only.
    public func start(port: Int, advertisedHost: String? = nil) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A port another program holds would look like this broker listening (a broker just
        // stopped may hold it a moment longer).
        guard Command.waitForPort(port, listening: false, seconds: 5) else { throw StackError("port \(port) is already in use") }
        let listener = "tcp://\(advertisedHost == nil ? "127.0.0.1" : "0.0.0.0"):\(port)"
        let advertised = "tcp://\(advertisedHost ?? "127.0.0.1"):\(port)"
        var environment = ProcessInfo.processInfo.environment
        for key in ["STORAGE_ENGINE", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "CLUSTER_ID"] {
            environment.removeValue(forKey: key)
        }
        let pid = try Command.spawn([try Self.binary(), "broker", "--listener-url", listener, "--advertised-listener-url", advertised,
                                     "--storage-engine", "memory://tansu/"], environment: environment, output: logFile)
        try String(pid).write(toFile: pidFile, atomically: true, encoding: .utf8)
        try String(port).write(toFile: portFile, atomically: true, encoding: .utf8)
        guard Command.waitForPort(port, seconds: 15, while: { Command.isAlive(pid) }) else {
            stop()
            let tail = (try? String(contentsOfFile: logFile, encoding: .utf8))?.suffix(500) ?? ""
            throw StackError("the Tansu broker did not start on port \(port): \(tail)")
        }
    }

    /// SIGTERM, then SIGKILL after two seconds; returns once the broker is gone.
    public func stop() {
        guard let pid = runningPID else { return }
        kill(pid, SIGTERM)
        for _ in 0..<100 where Command.isAlive(pid) { usleep(20_000) }
        if Command.isAlive(pid) { kill(pid, SIGKILL) }
        for _ in 0..<250 where Command.isAlive(pid) { usleep(20_000) }
        var status: Int32 = 0
        waitpid(pid, &status, WNOHANG)  // reap it if it was our child
        try? FileManager.default.removeItem(atPath: pidFile)
    }

    /// The broker binary: `FILEFLEET_TANSU`, `tansu` on PATH, or `.tools/bin/tansu` (where
    /// scripts/setup puts it) in the current directory or above the running executable.
    public static func binary() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let path = environment["FILEFLEET_TANSU"] { candidates.append(path) }
        for dir in (environment["PATH"] ?? "").split(separator: ":") { candidates.append("\(dir)/tansu") }
        candidates.append(FileManager.default.currentDirectoryPath + "/.tools/bin/tansu")
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while dir.path != "/" {
            candidates.append(dir.path + "/.tools/bin/tansu")
            dir.deleteLastPathComponent()
        }
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        throw StackError("the Tansu broker binary was not found: run scripts/setup, or set FILEFLEET_TANSU")
    }
}
