import Foundation

/// Walks a directory tree without following symlinked directories. Blocking: run it off the
/// cooperative pool. Regular files are reported, and symlinks to regular files with the target's
/// size and mtime (so that the planner sees the target change); the reader decides whether a link
/// may be followed (docs/hostile-input.md). A dangling link, and a link to a directory or special
/// file inside the root, is not a file of the source; one whose target is outside the root is
/// reported, so that the reader quarantines it (`escapes_root`). Names that are not valid UTF-8
/// are reported separately, escaped (`InvalidName`), with the filter applied to that spelling.
public struct DirectoryWalker: Sendable {
    public let root: String
    public let filter: PathFilter

    public init(root: String, filter: PathFilter) {
        self.root = root
        self.filter = filter
    }

    /// `tooLong` gets each file, and each directory (one entry: nothing under it can be stored
    /// either), whose relative path is longer than `LongPath.maxBytes`; the walk does not descend
    /// into such a directory, so no path it builds reaches `PATH_MAX`.
    ///
    /// `threads` list directories at once (the kernel's half of a walk, stat-ing every entry, is
    /// most of it). The callbacks are called on the calling thread, a directory's entries
    /// together, in no particular order of directories.
    /// `unreadable` gets each directory below the root that exists but cannot be listed
    /// (permission denied): one entry, as nothing under it can be seen.
    public func walk(threads: Int = System.coreCount, file: (ListedFile) throws -> Void,
                     invalidName: (String) -> Void = { _ in }, tooLong: (String) -> Void = { _ in },
                     unreadable: (String) -> Void = { _ in }) throws {
        guard let dir = opendir(root) else { throw UsageError("cannot read \(root): \(String(cString: strerror(errno)))") }
        closedir(dir)
        let queue = DirectoryQueue(root: "")
        defer { queue.cancel() }  // a callback that throws ends the walk: the threads stop listing
        // Threads of their own: the caller (often on a Dispatch worker itself) waits below, and
        // Dispatch's global queue would run only as many blocks at once as there are cores.
        for _ in 0..<max(1, threads) {
            Thread { [self] in
                while let relative = queue.next() { queue.finish(list(relative)) }
            }.start()
        }
        while let listed = queue.nextListed() {
            listed.invalidNames.forEach(invalidName)
            listed.tooLong.forEach(tooLong)
            listed.unreadable.forEach(unreadable)
            for found in listed.files { try file(found) }
        }
    }

    /// What one directory holds for the walk.
    fileprivate struct Listed: Sendable {
        var files: [ListedFile] = []
        var directories: [String] = []
        var invalidNames: [String] = []
        var tooLong: [String] = []
        var unreadable: [String] = []
    }

    private func list(_ relative: String) -> Listed {
        var listed = Listed()
        let absolute = relative.isEmpty ? root : root + "/" + relative
        guard let dir = opendir(absolute) else {
            // Gone meanwhile: not listed. There but closed to us: said, so that its files do not vanish silently.
            if errno != ENOENT && errno != ENOTDIR { listed.unreadable.append(relative) }
            return listed
        }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let bytes = Self.name(entry)
            guard let name = String(validating: bytes, as: UTF8.self) else {
                let raw = (relative.isEmpty ? [] : Array(relative.utf8) + [UInt8(ascii: "/")]) + bytes
                if let escaped = quarantinable(raw) { listed.invalidNames.append(escaped) }
                continue
            }
            if name == "." || name == ".." { continue }
            let path = relative.isEmpty ? name : relative + "/" + name
            var info = stat()
            // Relative to the open directory: the kernel resolves one name, not the whole path.
            guard fstatat(dirfd(dir), name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let kind = info.st_mode & S_IFMT
            if path.utf8.count > LongPath.maxBytes {
                let taken = kind == S_IFDIR ? filter.descendsInto(path)
                    : (kind == S_IFREG || kind == S_IFLNK) && filter.includesFile(path)
                if taken { listed.tooLong.append(path) }
                continue
            }
            switch kind {
            case S_IFDIR:
                if filter.descendsInto(path) { listed.directories.append(path) }
            case S_IFREG:
                if filter.includesFile(path) {
                    listed.files.append(ListedFile(path: path, size: Int64(info.st_size),
                                                   mtimeMicros: Timestamps.micros(info.st_mtim)))
                }
            case S_IFLNK:
                if filter.includesFile(path), let target = linkTarget(root + "/" + path) {
                    listed.files.append(ListedFile(path: path, size: Int64(target.st_size),
                                                   mtimeMicros: Timestamps.micros(target.st_mtim)))
                }
            default:
                continue  // sockets, FIFOs, devices: not files to import
            }
        }
        return listed
    }

    /// The name of a directory entry, read in place. Not `entry.pointee.d_name`: that loads the
    /// whole `dirent`, 280 bytes, and the kernel packs entries by their length, so for a short
    /// name at the end of readdir's buffer the load reads past it (a crash at a page boundary,
    /// seen once in a walk of 1,000,000 files).
    private static func name(_ entry: UnsafeMutablePointer<dirent>) -> [UInt8] {
        let name = UnsafeRawPointer(entry) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        return Array(UnsafeRawBufferPointer(start: name, count: strlen(name.assumingMemoryBound(to: CChar.self))))
    }

    /// What a symlink stands for in the listing: its target's metadata, or nil when it is not a file
    /// of the source (dangling, a loop, or a directory or special file inside the root).
    private func linkTarget(_ absolute: String) -> stat? {
        var target = stat()
        guard stat(absolute, &target) == 0 else { return nil }
        if target.st_mode & S_IFMT == S_IFREG { return target }
        guard let real = realpath(absolute, nil) else { return nil }
        defer { free(real) }
        return RelativePath.below(String(cString: real), root: realRoot) == nil ? target : nil
    }

    private var realRoot: String {
        guard let real = realpath(root, nil) else { return root }
        defer { free(real) }
        return String(cString: real)
    }

    /// The escaped spelling of a path whose name is not valid UTF-8, when it is a file, a link or a
    /// directory the filter takes (an invalid directory is one entry: its contents cannot be named).
    private func quarantinable(_ raw: [UInt8]) -> String? {
        let escaped = InvalidName.escaped(raw)
        var info = stat()
        let absolute = Array(root.utf8) + [UInt8(ascii: "/")] + raw + [0]
        let found = absolute.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { lstat($0.baseAddress!, &info) == 0 }
        }
        guard found else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: return filter.descendsInto(escaped) ? escaped : nil
        case S_IFREG, S_IFLNK: return filter.includesFile(escaped) ? escaped : nil
        default: return nil
        }
    }
}

/// A walk's shared state: the directories yet to list, taken by its threads (`next` waits while
/// others may still find more, and returns nil once none is pending or being listed), and what
/// they listed, taken by the caller (`nextListed`, nil once everything is listed and taken).
private final class DirectoryQueue: @unchecked Sendable {  // every field is guarded by `condition`
    private let condition = NSCondition()
    private var pending: [String]
    private var listing = 0
    private var listed: [DirectoryWalker.Listed] = []

    init(root: String) { pending = [root] }

    func next() -> String? {
        condition.lock()
        defer { condition.unlock() }
        while pending.isEmpty {
            if listing == 0 { return nil }
            condition.wait()
        }
        listing += 1
        return pending.removeLast()
    }

    /// The directory taken by this thread's last `next` is listed.
    func finish(_ directory: DirectoryWalker.Listed) {
        condition.lock()
        defer { condition.unlock() }
        pending += directory.directories
        listed.append(directory)
        listing -= 1
        condition.broadcast()
    }

    func nextListed() -> DirectoryWalker.Listed? {
        condition.lock()
        defer { condition.unlock() }
        while listed.isEmpty {
            if pending.isEmpty && listing == 0 { return nil }
            condition.wait()
        }
        return listed.removeLast()
    }

    /// No more listing: the threads finish the directory in hand and stop.
    func cancel() {
        condition.lock()
        defer { condition.unlock() }
        pending.removeAll()
        condition.broadcast()
    }
}
