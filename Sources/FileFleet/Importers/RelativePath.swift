/// Paths inside a source: `/`-separated, relative, normalised, bytes kept exactly as on disk
/// (no Unicode normalisation: `é` as one scalar and as `e` + U+0301 are different files).
public enum RelativePath {
    /// True for `a`, `dir/a b.md`, `ü/"q"\n.txt`; false for an empty path, an absolute one, one with a NUL,
    /// and one with an empty, `.` or `..` component (`a//b`, `./a`, `a/`, `a/../b`): such a path either
    /// escapes the root or names a file under a second spelling, which would give it two rows.
    public static func isValid(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { isValid($0) }
    }

    static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        if bytes.isEmpty || bytes[0] == UInt8(ascii: "/") { return false }
        var componentStart = 0
        for i in 0...bytes.count {
            if i < bytes.count {
                let b = bytes[i]
                if b == 0 { return false }
                if b != UInt8(ascii: "/") { continue }
            }
            let length = i - componentStart
            if length == 0 { return false }
            if bytes[componentStart] == UInt8(ascii: ".") {
                if length == 1 { return false }
                if length == 2 && bytes[componentStart + 1] == UInt8(ascii: ".") { return false }
            }
            componentStart = i + 1
        }
        return true
    }

    /// The `/`-separated components of `path`, split byte by byte, empty ones left out. Never
    /// `String.split(separator: "/")`: to it, `/` followed by a combining mark (`/\u{301}`) is one
    /// Character that is not `/`, while the kernel sees a separator there.
    static func components(_ path: Substring) -> [String] {
        path.utf8.split(separator: UInt8(ascii: "/")).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether `path` starts with the bytes of `prefix` (`hasPrefix` compares Characters, by
    /// canonical equivalence: `café` NFC and NFD are different directories on disk).
    static func hasPrefix(_ path: some StringProtocol, _ prefix: String) -> Bool {
        path.utf8.starts(with: prefix.utf8)
    }

    /// What of the absolute `path` lies below the directory `root` (`""` for the root itself), byte
    /// by byte; nil when `path` is elsewhere. `/a/bc` is not below `/a/b`; everything is below `/`.
    static func below(_ path: String, root: String) -> Substring? {
        var root = root.utf8[...]
        while root.last == UInt8(ascii: "/") { root = root.dropLast() }  // `/` becomes empty
        guard path.utf8.starts(with: root) else { return nil }
        let rest = path.utf8.dropFirst(root.count)
        if rest.isEmpty { return ""[...] }
        guard rest.first == UInt8(ascii: "/") else { return nil }
        return Substring(rest.dropFirst())
    }

    /// The last component, e.g. `notes/Plan.v2.md` → `Plan.v2.md`.
    public static func fileName(_ path: String) -> Substring {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return path[...] }
        return path[path.utf8.index(after: slash)...]
    }

    /// The file name without its extension: `a/Plan.v2.md` → `Plan.v2`, `.bashrc` → `.bashrc`,
    /// `README` → `README`, `notes.` → `notes`.
    public static func stem(_ path: String) -> Substring {
        let name = fileName(path)
        guard let dot = name.utf8.lastIndex(of: UInt8(ascii: ".")), dot != name.startIndex else { return name }
        return name[..<dot]
    }

    /// The extension after the last dot, lowercased ASCII; nil when there is none (`README`, `.bashrc`).
    public static func lowercasedExtension(_ path: String) -> String? {
        let name = fileName(path)
        guard let dot = name.utf8.lastIndex(of: UInt8(ascii: ".")), dot != name.startIndex else { return nil }
        let ext = name.utf8[name.utf8.index(after: dot)...]
        return String(decoding: ext.map { $0 >= 0x41 && $0 <= 0x5a ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
