import Foundation

/// A path compared byte for byte. `String` equality is canonical equivalence, under which `é` as one
/// scalar and `e` + U+0301 are equal; on disk and in Postgres they are two files (SPEC §5), so sets
/// and dictionaries of paths are keyed by this.
struct ExactPath: Hashable, Sendable {
    let path: String

    init(_ path: String) { self.path = path }

    /// Through the strings' own storage, without copying them (a copy would retain and release
    /// each key a dictionary probe compares: a tenth of a no-op plan's time at a million files).
    static func == (a: ExactPath, b: ExactPath) -> Bool {
        guard a.path.utf8.count == b.path.utf8.count else { return false }
        if let equal = a.path.utf8.withContiguousStorageIfAvailable({ x in
            b.path.utf8.withContiguousStorageIfAvailable { y in x.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 }
        }), let equal {
            return equal
        }
        return a.path.utf8.elementsEqual(b.path.utf8)  // bridged or non-contiguous storage
    }

    func hash(into hasher: inout Hasher) {
        if path.utf8.withContiguousStorageIfAvailable({ hasher.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
            Array(path.utf8).withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }
}
