import Foundation

/// A file found by a walk: its path relative to the root, `/`-separated, exactly as on disk.
public struct ListedFile: Sendable, Equatable {
    public var path: String
    public var size: Int64
    /// Modification time in microseconds since the epoch (what timestamptz holds).
    public var mtimeMicros: Int64
}

/// Which paths belong to a source: hidden entries are skipped unless an include names them;
/// with includes, only matching files; excludes win. Globs are fnmatch(3) patterns matched against
/// the relative path, and, for patterns without `/`, against the file name too.
public struct PathFilter: Sendable {
    public var includes: [String]
    public var excludes: [String]

    public init(includes: [String] = [], excludes: [String] = []) {
        self.includes = includes
        self.excludes = excludes
    }

    public func includesFile(_ path: String) -> Bool {
        if excludes.contains(where: { Self.matches($0, path) }) { return false }
        if includes.isEmpty { return !Self.isHidden(path) }
        return includes.contains { Self.matches($0, path) }
    }

    /// Whether a walk must descend into `directory` (relative path).
    public func descendsInto(_ directory: String) -> Bool {
        if excludes.contains(where: { Self.matches($0, directory) }) { return false }
        if !Self.isHidden(directory) { return true }
        // A hidden directory only when an include names something under it.
        return includes.contains { $0.hasPrefix(directory + "/") || Self.matches($0, directory) }
    }

    static func isHidden(_ path: String) -> Bool {
        path.split(separator: "/").contains { $0.hasPrefix(".") }
    }

    static func matches(_ pattern: String, _ path: String) -> Bool {
        if fnmatch(pattern, path, 0) == 0 { return true }
        guard !pattern.contains("/"), let slash = path.lastIndex(of: "/") else { return false }
        return fnmatch(pattern, String(path[path.index(after: slash)...]), 0) == 0
    }
}

/// Walks a directory tree without following symlinked directories. Blocking: run it off the
/// cooperative pool. Regular files and symlinks are reported (the importer decides what a
/// symlink may do); names that are not valid UTF-8 are reported separately, as raw bytes.
public struct DirectoryWalker {
    public let root: String
    public let filter: PathFilter

    public init(root: String, filter: PathFilter) {
        self.root = root
        self.filter = filter
    }

    public func walk(file: (ListedFile) throws -> Void, invalidName: (String) -> Void = { _ in }) throws {
        var pending: [String] = [""]
        while let relative = pending.popLast() {
            let absolute = relative.isEmpty ? root : root + "/" + relative
            guard let dir = opendir(absolute) else {
                if relative.isEmpty { throw UsageError("cannot read \(root): \(String(cString: strerror(errno)))") }
                continue  // vanished or unreadable meanwhile: its files are simply not listed
            }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name: String? = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    let bytes = raw.prefix(while: { $0 != 0 })
                    return String(validating: bytes, as: UTF8.self)
                }
                guard let name else {
                    let bytes = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
                    invalidName((relative.isEmpty ? "" : relative + "/") + String(decoding: bytes, as: UTF8.self))
                    continue
                }
                if name == "." || name == ".." { continue }
                let path = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(root + "/" + path, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    if filter.descendsInto(path) { pending.append(path) }
                case S_IFREG, S_IFLNK:
                    if filter.includesFile(path) {
                        try file(ListedFile(path: path, size: Int64(info.st_size),
                                            mtimeMicros: Timestamps.micros(info.st_mtim)))
                    }
                default:
                    continue  // sockets, FIFOs, devices: not files to import
                }
            }
        }
    }
}
