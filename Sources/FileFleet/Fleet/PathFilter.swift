import Foundation

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
        return includes.contains { RelativePath.hasPrefix($0, directory + "/") || Self.matches($0, directory) }
    }

    /// Whether a walk with this filter lists `path`: every directory on its way is descended into,
    /// and the file is included.
    public func takes(_ path: String) -> Bool {
        guard includesFile(path) else { return false }
        var directory = Substring(path)
        while let slash = directory.lastIndex(of: "/") {
            directory = directory[..<slash]
            if !descendsInto(String(directory)) { return false }
        }
        return true
    }

    /// Whether a component starts with `.`: byte-wise, like everything about paths, and without
    /// splitting (the walk asks this of every file).
    static func isHidden(_ path: String) -> Bool {
        var afterSlash = true
        for byte in path.utf8 {
            if afterSlash && byte == UInt8(ascii: ".") { return true }
            afterSlash = byte == UInt8(ascii: "/")
        }
        return false
    }

    static func matches(_ pattern: String, _ path: String) -> Bool {
        if fnmatch(pattern, path, 0) == 0 { return true }
        guard !pattern.utf8.contains(UInt8(ascii: "/")), path.utf8.contains(UInt8(ascii: "/")) else { return false }
        return fnmatch(pattern, String(RelativePath.fileName(path)), 0) == 0
    }
}
