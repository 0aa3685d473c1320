import Foundation

/// A path compared byte for byte. `String` equality is canonical equivalence, under which `é` as one
/// scalar and `e` + U+0301 are equal; on disk and in Postgres they are two files (SPEC §5), so sets
/// and dictionaries of paths are keyed by this.
struct ExactPath: Hashable, Sendable {
    let path: String

    init(_ path: String) { self.path = path }

    static func == (a: ExactPath, b: ExactPath) -> Bool {
        var (a, b) = (a.path, b.path)
        return a.withUTF8 { x in
            b.withUTF8 { y in x.count == y.count && (x.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0) }
        }
    }

    func hash(into hasher: inout Hasher) {
        var path = path
        path.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
