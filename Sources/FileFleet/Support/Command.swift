import Foundation

/// Synchronous subprocess helpers. Blocking: call them inside `runBlocking` from async code.
public enum Command {
    /// Runs `executable args…` to completion; output (stdout and stderr together) goes through a
    /// temporary file, so that a daemon it forks (pg_ctl's postmaster) cannot hold a pipe open.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String],
                           environment: [String: String]? = nil, asUser user: String? = nil,
                           stdin: String = "/dev/null") throws -> String {
        let argv = user.map { ["/usr/sbin/runuser", "-u", $0, "--", executable] } ?? [executable]
        let outputPath = NSTemporaryDirectory() + "filefleet-cmd-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let pid = try spawn(argv + arguments, environment: environment, stdin: stdin, output: outputPath)
        let status = wait(pid)
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw CommandError(command: (argv + arguments).joined(separator: " "), status: status, output: text)
        }
        return text
    }

    /// Starts `argv` with stdin from `stdin`, stdout written to `output` and stderr to
    /// `errorOutput` (or to `output` too), in a process group of its own (a Ctrl-C on the terminal
    /// reaches us, and we stop it in order). Returns its pid. posix_spawn rather than Foundation's
    /// Process, whose wait can hang when several threads spawn at once.
    public static func spawn(_ argv: [String], environment: [String: String]? = nil, stdin: String = "/dev/null",
                             output: String, errorOutput: String? = nil) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if let errorOutput {
            posix_spawn_file_actions_addopen(&actions, 2, errorOutput, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The spawning thread's signal mask and our ignored signals would be inherited: the
        // broker started by `stack up` had SIGTERM blocked, ignored every `stack down`, and was
        // SIGKILLed 2 s later. The child starts with no signal blocked and the defaults restored.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let environment = environment ?? ProcessInfo.processInfo.environment
        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (cArguments + cEnvironment).forEach { free($0) } }
        var pid: Int32 = 0
        let result = posix_spawnp(&pid, argv[0], &actions, &attributes, cArguments, cEnvironment)
        guard result == 0 else {
            throw CommandError(command: argv.joined(separator: " "), status: -1,
                               output: "cannot start: \(String(cString: strerror(result)))",
                               launchError: POSIXErrorCode(rawValue: result))
        }
        return pid
    }

    /// Waits for a child and returns its exit status (128 + signal when killed).
    @discardableResult
    public static func wait(_ pid: Int32) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return -1 }
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Whether `pid` is a live process (a zombie is not: SPEC §9.3a).
    public static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return state != "Z" && state != "X"
    }

    /// A free TCP port on the loopback interface, for a server to listen on. Chosen at random
    /// below the kernel's ephemeral range (32768+), where outgoing connections take their local
    /// ports: a port from port 0 could be taken by a client socket before the server binds it.
    public static func freeLoopbackPort() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 15_000..<32_000)
            if (try? bindLoopback(port: port)) != nil { return port }
        }
        return try bindLoopback(port: 0)
    }

    /// Binds 127.0.0.1:`port` (0: any) and closes again; returns the port bound.
    private static func bindLoopback(port: Int) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    /// Waits up to `seconds` until something listens on `port` (with `listening: false`, until
    /// nothing does), giving up early once `alive` turns false; returns whether it came to that.
    public static func waitForPort(_ port: Int, listening: Bool = true, seconds: Double,
                                   while alive: () -> Bool = { true }) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if isListening(port: port) == listening { return true }
            guard alive(), Date() < deadline else { return false }
            usleep(20_000)
        }
    }

    public static func isListening(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// Whether this process runs as root (servers then run as an unprivileged user).
    public static var isRoot: Bool { geteuid() == 0 }
}
