import Foundation

/// Reads one file of a source without ever leaving the source root.
///
/// The path is walked one component at a time with `openat(…, O_NOFOLLOW)` from a descriptor of the root,
/// so a symlink is never followed by the kernel: each one is read and resolved here. A symlink whose target
/// stays inside the root is followed (the file is imported under the link's path, with the target's
/// bytes); one that leads outside — by `..`, or an absolute target outside the root — is `.escapesRoot`.
/// A link swapped in between the check and the open makes the open fail (`ELOOP`) rather than follow it.
/// Blocking I/O: call it from a worker thread, not from the cooperative pool.
public enum FileReader {
    /// Symlinks followed per path before giving up, as the kernel's `MAXSYMLINKS`.
    static let maxSymlinks = 40

    public static func read(root: String, relativePath: String, maxBytes: Int) throws(ReadFailure) -> SourceFile {
        guard RelativePath.isValid(relativePath) else { throw .invalidPath }
        guard !root.isEmpty, !root.utf8.contains(0) else { throw .unreadable("source root: invalid path") }
        // The root is configuration, trusted: symlinks in it are followed. If it is missing we say
        // `unreadable`, never `vanished`: an unmounted volume must not read as "every file was deleted".
        let rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw .unreadable("source root \(root): \(errorText(errno))") }
        defer { close(rootFD) }

        var walk = Walk(rootFD: rootFD, root: root)
        defer { walk.closeCurrent() }
        return try walk.read(relativePath, maxBytes: maxBytes)
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

    mutating func read(_ relativePath: String, maxBytes: Int) throws(ReadFailure) -> SourceFile {
        push(relativePath[...])
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
                guard !pending.isEmpty else { throw .notAFile }
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
                let fd = openat(current, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
                if fd < 0 {
                    let code = errno
                    if code == ELOOP { try retry(name); continue }
                    throw FileReader.failure(errno: code)
                }
                defer { close(fd) }
                return try readOpen(fd, maxBytes: maxBytes)
            default:
                guard pending.isEmpty else { throw .vanished }
                throw .notAFile
            }
        }
        // Only reached when the path resolved to the root itself (a link to `.`).
        throw .notAFile
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
}
