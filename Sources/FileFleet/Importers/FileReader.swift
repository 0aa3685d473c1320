import Foundation

/// Reads files of a source without ever leaving the source root.
///
/// A path is walked one component at a time with `openat(…, O_NOFOLLOW)` from a descriptor of the root,
/// so a symlink is never followed by the kernel: each one is read and resolved here. A symlink whose target
/// stays inside the root is followed (the file is imported under the link's path, with the target's
/// bytes); one that leads outside — by `..`, or an absolute target outside the root — is `.escapesRoot`.
/// A link swapped in between the check and the open makes the open fail (`ELOOP`) rather than follow it.
///
/// One reader reads many files: it keeps the root open, and the directories it walked to (at most
/// `maxDirectories`), so that a file next to one read before costs two lookups of one name (`fstatat`,
/// `openat`) instead of a walk from the root: 5 system calls a file instead of 13 at depth 2. A path
/// with anything unusual on the way (a link, a missing parent, not a regular file) is walked from the
/// root, so every answer is the walk's. Keep a reader for a short stretch of paths (a batch's chunk): a
/// directory moved elsewhere meanwhile is still read through the descriptor opened before the move.
/// Not thread-safe; blocking I/O: use it from one worker thread, not from the cooperative pool.
public final class FileReader {
    /// Symlinks followed per path before giving up, as the kernel's `MAXSYMLINKS`.
    static let maxSymlinks = 40
    /// Directory descriptors kept open per reader.
    static let maxDirectories = 64

    let root: String
    private let rootFD: Int32
    /// Why the root cannot be read, said for every path.
    private let rootFailure: ReadFailure?
    /// Directories below the root opened by a walk, by their relative path, byte for byte.
    private var directories: [ExactPath: Int32] = [:]

    public init(root: String) {
        self.root = root
        guard !root.isEmpty, !root.utf8.contains(0) else {
            (rootFD, rootFailure) = (-1, .unreadable("source root: invalid path"))
            return
        }
        // The root is configuration, trusted: symlinks in it are followed. If it is missing we say
        // `unreadable`, never `vanished`: an unmounted volume must not read as "every file was deleted".
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        (rootFD, rootFailure) = fd >= 0 ? (fd, nil) : (-1, .unreadable("source root \(root): \(Self.errorText(errno))"))
    }

    deinit {
        for fd in directories.values { close(fd) }
        if rootFD >= 0 { close(rootFD) }
    }

    /// One file: its bytes, size and modification time, or why not.
    public func read(_ relativePath: String, maxBytes: Int) throws(ReadFailure) -> SourceFile {
        guard RelativePath.isValid(relativePath) else { throw .invalidPath }
        if let rootFailure { throw rootFailure }
        if let file = try readBesideEarlierFiles(relativePath, maxBytes: maxBytes) { return file }
        var walk = Walk(rootFD: rootFD, root: root)
        defer { walk.closeCurrent() }
        let fd = try walk.open(relativePath[...], directory: false)
        defer { close(fd) }
        return try readOpen(fd, maxBytes: maxBytes)
    }

    /// One file with a reader of its own.
    public static func read(root: String, relativePath: String, maxBytes: Int) throws(ReadFailure) -> SourceFile {
        try FileReader(root: root).read(relativePath, maxBytes: maxBytes)
    }

    /// A regular file in a directory this reader has open (opened now by a walk, if need be); nil
    /// when anything else is on the way, for the walk from the root to decide.
    private func readBesideEarlierFiles(_ relativePath: String, maxBytes: Int) throws(ReadFailure) -> SourceFile? {
        let slash = relativePath.utf8.lastIndex(of: UInt8(ascii: "/"))
        let name = slash.map { String(relativePath.utf8[relativePath.utf8.index(after: $0)...])! } ?? relativePath
        var directory = rootFD
        if let slash {
            let parent = ExactPath(String(relativePath.utf8[..<slash])!)
            if let fd = directories[parent] {
                directory = fd
            } else {
                var walk = Walk(rootFD: rootFD, root: root)
                defer { walk.closeCurrent() }
                guard let fd = try? walk.open(parent.path[...], directory: true) else { return nil }
                if directories.count >= Self.maxDirectories {
                    for fd in directories.values { close(fd) }
                    directories.removeAll(keepingCapacity: true)
                }
                directories[parent] = fd
                directory = fd
            }
        }
        var st = stat()
        guard fstatat(directory, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & fileTypeMask == regularFile else { return nil }
        let fd = openat(directory, name, fileFlags)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return try readOpen(fd, maxBytes: maxBytes)
    }

    static func failure(errno code: Int32) -> ReadFailure {
        switch code {
        case ENOENT, ENOTDIR: .vanished
        case EACCES, EPERM: .unreadable("permission denied")
        case ELOOP: .unreadable("too many levels of symbolic links")
        default: .unreadable(errorText(code))
        }
    }

    static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}

private let fileTypeMask: mode_t = 0o170000
private let regularFile: mode_t = 0o100000
private let directory: mode_t = 0o040000
private let symbolicLink: mode_t = 0o120000
private let fileFlags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK

private struct Walk {
    let rootFD: Int32
    let root: String
    /// The directory the next component is looked up in; `rootFD` or a descriptor this walk owns.
    var current: Int32
    /// Names of the directories from the root down to `current`.
    var stack: [String] = []
    /// Components still to resolve, the next one last.
    var pending: [String] = []
    var symlinks = 0

    init(rootFD: Int32, root: String) {
        self.rootFD = rootFD
        self.root = root
        self.current = rootFD
    }

    mutating func closeCurrent() {
        if current != rootFD { close(current) }
        current = rootFD
    }

    mutating func push(_ path: Substring) {
        for part in RelativePath.components(path).reversed() where !part.utf8.elementsEqual(".".utf8) {
            pending.append(part)
        }
    }

    /// Resolves `path`: the descriptor of the regular file it names, or with `directory`, of the
    /// directory below the root it names. The caller closes it.
    mutating func open(_ path: Substring, directory wanted: Bool) throws(ReadFailure) -> Int32 {
        push(path)
        while let name = pending.popLast() {
            if name.utf8.elementsEqual("..".utf8) {
                guard !stack.isEmpty else { throw .escapesRoot }
                stack.removeLast()
                try reopenStack()
                continue
            }
            var st = stat()
            guard fstatat(current, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw FileReader.failure(errno: errno)
            }
            switch st.st_mode & fileTypeMask {
            case symbolicLink:
                try follow(name)
            case directory:
                guard !pending.isEmpty || wanted else { throw .notAFile }
                let fd = openat(current, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if fd < 0 {
                    let code = errno
                    // Replaced by a symlink since the fstatat: look at it again.
                    if code == ELOOP || code == ENOTDIR { try retry(name); continue }
                    throw FileReader.failure(errno: code)
                }
                closeCurrent()
                current = fd
                stack.append(name)
            case regularFile:
                // A file where a directory was expected: the path names nothing.
                guard pending.isEmpty else { throw .vanished }
                guard !wanted else { throw .notAFile }
                let fd = openat(current, name, fileFlags)
                if fd < 0 {
                    let code = errno
                    if code == ELOOP { try retry(name); continue }
                    throw FileReader.failure(errno: code)
                }
                return fd
            default:
                guard pending.isEmpty else { throw .vanished }
                throw .notAFile
            }
        }
        // The path resolved to a directory: the root itself (a link to `.`) is not one to hand out.
        guard wanted, current != rootFD else { throw .notAFile }
        defer { current = rootFD }
        return current
    }

    private mutating func retry(_ name: String) throws(ReadFailure) {
        symlinks += 1
        guard symlinks <= FileReader.maxSymlinks else { throw FileReader.failure(errno: ELOOP) }
        pending.append(name)
    }

    private mutating func follow(_ name: String) throws(ReadFailure) {
        symlinks += 1
        guard symlinks <= FileReader.maxSymlinks else { throw FileReader.failure(errno: ELOOP) }
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = buffer.withUnsafeMutableBufferPointer { out in
            readlinkat(current, name, UnsafeMutableRawPointer(out.baseAddress!).assumingMemoryBound(to: CChar.self),
                       out.count - 1)
        }
        guard n >= 0 else { throw FileReader.failure(errno: errno) }
        // A target this reader cannot spell (it opens by name): said, not taken for a missing file.
        guard let target = String(validating: buffer[..<n], as: UTF8.self) else {
            throw .unreadable("a symlink on the way points to a name that is not valid UTF-8")
        }
        guard !target.isEmpty else { throw .vanished }
        if target.utf8.first == UInt8(ascii: "/") {
            guard let inside = Self.insideRoot(target, root: root) else { throw .escapesRoot }
            closeCurrent()
            stack.removeAll()
            push(inside)
        } else {
            push(target[...])
        }
    }

    /// The part of an absolute symlink target below the root, compared with the root as configured
    /// and with its real path; nil when the target is elsewhere.
    private static func insideRoot(_ target: String, root: String) -> Substring? {
        if let inside = RelativePath.below(target, root: root) { return inside }
        guard let real = realpath(root, nil) else { return nil }
        defer { free(real) }
        return RelativePath.below(target, root: String(cString: real))
    }

    /// After a `..`: open the remaining directories again from the root, refusing any that became a link.
    private mutating func reopenStack() throws(ReadFailure) {
        closeCurrent()
        for name in stack {
            let fd = openat(current, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw FileReader.failure(errno: errno == ELOOP ? ENOENT : errno) }
            closeCurrent()
            current = fd
        }
    }
}

/// The bytes of an open file, checked to be a regular file of at most `maxBytes` on the descriptor itself.
private func readOpen(_ fd: Int32, maxBytes: Int) throws(ReadFailure) -> SourceFile {
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw FileReader.failure(errno: errno) }
    guard st.st_mode & fileTypeMask == regularFile else { throw .notAFile }
    let size = Int(st.st_size)
    guard size <= maxBytes else { throw .tooLarge(size) }
    var readError: Int32 = 0
    // One preallocated buffer, filled by a read loop; a file that shrank meanwhile gives fewer bytes.
    let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
        var done = 0
        while done < size, let base = buffer.baseAddress {
            let n = Glibc.read(fd, base + done, size - done)
            if n > 0 {
                done += n
            } else if n == 0 {
                break
            } else if errno != EINTR {
                readError = errno
                break
            }
        }
        count = done
    }
    if readError != 0 { throw FileReader.failure(errno: readError) }
    let micros = Timestamps.micros(st.st_mtim)
    return SourceFile(bytes: bytes, size: bytes.count, mtime: Date(timeIntervalSince1970: Double(micros) / 1e6),
                      mtimeMicros: micros)
}
