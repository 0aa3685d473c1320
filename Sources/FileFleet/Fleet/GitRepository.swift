import Foundation
import Synchronization

/// The git work tree at a source's root, read through the `git` executable (SPEC §6.3). Each
/// command runs as a subprocess with a timeout; its stdout goes to a temporary file that is read
/// back in chunks and split at NULs, so a listing of millions of paths is never one String.
/// Blocking: call from `runBlocking`. Paths are raw names relative to the root (`core.quotepath=off`).
public struct GitRepository: Sendable {
    public let root: String
    public var timeout: Duration
    /// Set by a cancelled caller: the running command is killed and `CancellationError` thrown.
    let cancellation: GitCancellation?

    public init(root: String, timeout: Duration = .seconds(900)) {
        self.init(root: root, timeout: timeout, cancellation: nil)
    }

    init(root: String, timeout: Duration, cancellation: GitCancellation?) {
        self.root = root
        self.timeout = timeout
        self.cancellation = cancellation
    }

    /// Git mode applies when SOURCE itself holds `.git` (a directory, or a file in a linked work tree).
    public static func isWorkTree(_ root: String) -> Bool {
        var info = stat()
        return lstat(root + "/.git", &info) == 0
    }

    /// The commit HEAD points at; nil while the branch has no commit yet.
    public func head() throws -> String? {
        var id: String?
        let status = try run(["rev-parse", "-q", "--verify", "HEAD^{commit}"], accept: [0, 1]) { field in
            id = String(decoding: field, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return status == 0 ? id : nil
    }

    /// Whether `id` names a commit whose objects are still here (false after a rewrite and gc).
    public func hasCommit(_ id: String) throws -> Bool {
        guard id.allSatisfy(\.isHexDigit), !id.isEmpty else { return false }
        return try run(["cat-file", "-e", "\(id)^{commit}"], accept: [0, 1, 128]) { _ in } == 0
    }

    /// Every path that differs between two commits, both sides of a rename or copy. `inTarget`:
    /// whether `to` holds the path (false for a deletion and for a rename's source).
    public func changedPaths(from: String, to: String, _ each: (Path, _ inTarget: Bool) throws -> Void) throws {
        var letter: UInt8 = 0  // the current record's status
        var pending = 0  // paths still to come in the current record
        try run(["diff", "--name-status", "-z", "-M", "--no-ext-diff", "--no-textconv", "--ignore-submodules=all",
                 from, to, "--"]) { field in
            if pending > 0 {
                pending -= 1
                let renamedAway = letter == UInt8(ascii: "R") && pending == 1
                return try each(Path(field), letter != UInt8(ascii: "D") && !renamedAway)
            }
            // A status letter, with a score for renames and copies: two paths follow, source first.
            letter = field.first ?? 0
            pending = letter == UInt8(ascii: "R") || letter == UInt8(ascii: "C") ? 2 : 1
        }
    }

    /// How `git status` shows a path.
    public enum Status: Sendable {
        /// `??`: untracked and not ignored.
        case untracked
        /// In the index: changed there or in the work tree, or unmerged.
        case tracked
        /// Gone from the index: a staged deletion, or the original path of a staged rename.
        case removedFromIndex
    }

    /// What `git status` shows changed (staged or not) or untracked. With `--untracked-files=all`
    /// every untracked file that `.gitignore` (or `info/exclude`) does not match is listed, so an
    /// untracked file missing here is ignored, or inside a nested repository.
    public func statusPaths(_ each: (Path, Status) throws -> Void) throws {
        var original: Status?  // set when the next field is a staged rename's or copy's original path
        try run(["status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignore-submodules=all"]) { field in
            if let status = original {
                original = nil
                return try each(Path(field), status)
            }
            // "XY path"; for a rename or copy the original path follows as its own field.
            guard field.count > 3 else { return }
            let x = field[field.startIndex], y = field[field.startIndex + 1]
            let (d, r, c) = (UInt8(ascii: "D"), UInt8(ascii: "R"), UInt8(ascii: "C"))
            if x == r || x == c || y == r || y == c {
                // A copy's original stays in the index, and so does a work-tree rename's.
                original = x == r ? .removedFromIndex : .tracked
            }
            let status: Status = x == UInt8(ascii: "?") ? .untracked
                : x == d && y == UInt8(ascii: " ") ? .removedFromIndex  // "DD" and "DU" are unmerged: still in the index
                : .tracked
            try each(Path(field.dropFirst(3)), status)
        }
    }

    /// Every file of the work tree: tracked, and untracked unless ignored.
    public func listFiles(_ each: (Path) throws -> Void) throws {
        try run(["ls-files", "-z", "--cached", "--others", "--exclude-standard"]) { field in try each(Path(field)) }
    }

    /// The symbolic links the index holds (mode 120000), valid UTF-8 names only.
    func trackedSymlinks() throws -> [String] {
        var links: [String] = []
        // `<mode> <object> <stage>\t<path>`
        try run(["ls-files", "-z", "--stage"]) { field in
            guard field.starts(with: Array("120000 ".utf8)), let tab = field.firstIndex(of: UInt8(ascii: "\t")),
                  let name = Path(field[(tab + 1)...]).name else { return }
            links.append(name)
        }
        return links
    }

    /// Which of `paths` the index holds, from one pass over `git ls-files`: linear in the index,
    /// where `git check-ignore` reads the whole index once for every path it is given.
    func tracked(among paths: Set<ExactPath>) throws -> Set<ExactPath> {
        guard !paths.isEmpty else { return [] }
        var tracked = Set<ExactPath>()
        try run(["ls-files", "-z", "--cached"]) { field in
            guard let name = Path(field).name else { return }
            let path = ExactPath(name)
            if paths.contains(path) { tracked.insert(path) }
        }
        return tracked
    }

    /// A path as git printed it: `name` is nil when the bytes are not valid UTF-8.
    public struct Path {
        public let bytes: [UInt8]
        public var name: String? { String(validating: bytes, as: UTF8.self) }
        public var lossy: String { String(decoding: bytes, as: UTF8.self) }
        init(_ bytes: ArraySlice<UInt8>) { self.bytes = Array(bytes) }
    }

    // MARK: Running git

    static let globalOptions = ["-c", "core.quotepath=off", "-c", "safe.directory=*",
                                // A repository's config must not make us run its commands.
                                "-c", "core.fsmonitor=false", "--no-pager"]

    /// Runs `git args` in the root and feeds its stdout to `field`, split at NULs (a final field
    /// without a NUL too). Statuses outside `accept` throw; so does a timeout or a cancellation.
    @discardableResult
    func run(_ arguments: [String], accept: Set<Int32> = [0],
             field: (ArraySlice<UInt8>) throws -> Void) throws -> Int32 {
        let argv = ["git", "-C", root] + Self.globalOptions + arguments
        let command = "git " + arguments.joined(separator: " ")
        let base = NSTemporaryDirectory() + "filefleet-git-\(UUID().uuidString)"
        let (outPath, errPath) = (base + ".out", base + ".err")
        defer { unlink(outPath); unlink(errPath) }

        let pid: Int32
        do {
            pid = try Command.spawn(argv, environment: Self.environment, stdin: "/dev/null", output: outPath, errorOutput: errPath)
        } catch let error as CommandError where error.launchError == .ENOENT {
            throw UsageError("SOURCE \(root) is a git work tree, but git is not installed (not found on PATH)")
        }
        let status = try waitBounded(pid, command: command)
        let stderr = Self.tail(of: errPath)
        guard accept.contains(status) else {
            if stderr.contains("not a git repository") {
                throw UsageError("SOURCE \(root) has a .git, but git says it is not a git repository: "
                                 + stderr.trimmingCharacters(in: .whitespacesAndNewlines).suffix(300))
            }
            throw GitError(command: command, status: status, stderr: stderr)
        }
        try Self.readFields(outPath, field)
        return status
    }

    /// Waits for `pid`, killing its process group on timeout or cancellation.
    private func waitBounded(_ pid: Int32, command: String) throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        var sleep: UInt32 = 1_000
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { break }
            if result < 0 && errno != EINTR {
                throw GitError(command: command, status: -1, stderr: "waitpid: \(String(cString: strerror(errno)))")
            }
            let cancelled = cancellation?.isCancelled ?? false
            if cancelled || ContinuousClock.now >= deadline {
                kill(-pid, SIGKILL)
                _ = Command.wait(pid)
                if cancelled { throw CancellationError() }
                throw GitError(command: command, status: -1, stderr: "timed out after \(timeout); killed")
            }
            usleep(sleep)
            sleep = min(sleep * 2, 50_000)
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    private static func readFields(_ path: String, _ field: (ArraySlice<UInt8>) throws -> Void) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        var pending: [UInt8] = []
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            pending.append(contentsOf: chunk)
            var start = pending.startIndex
            while let nul = pending[start...].firstIndex(of: 0) {
                try field(pending[start..<nul])
                start = nul + 1
            }
            pending.removeSubrange(..<start)
        }
        if !pending.isEmpty { try field(pending[...]) }
    }

    private static func tail(of path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 4096 ? size - 4096 : 0)
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }

    /// A clean git environment: no inherited GIT_* variable may point git at another repository.
    static var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("GIT_") }
        environment["GIT_OPTIONAL_LOCKS"] = "0"
        environment["GIT_TERMINAL_PROMPT"] = "0"
        environment["LC_ALL"] = "C"
        return environment
    }
}

extension GitRepository {
    /// Runs blocking git work off the cooperative pool; cancelling the caller kills the command.
    static func withRepository<T: Sendable>(root: String, timeout: Duration = .seconds(900),
                                            _ body: @escaping @Sendable (GitRepository) throws -> T) async throws -> T {
        let cancellation = GitCancellation()
        return try await withTaskCancellationHandler {
            try await runBlocking { try body(GitRepository(root: root, timeout: timeout, cancellation: cancellation)) }
        } onCancel: {
            cancellation.cancel()
        }
    }
}
