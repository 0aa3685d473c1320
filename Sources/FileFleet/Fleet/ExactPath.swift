/// A path compared byte for byte. `String` equality is canonical equivalence, under which `é` as one
/// scalar and `e` + U+0301 are equal; on disk and in Postgres they are two files (SPEC §5), so sets
/// and dictionaries of paths are keyed by this.
struct ExactPath: Hashable, Sendable {
    let path: String

    init(_ path: String) { self.path = path }

    static func == (a: ExactPath, b: ExactPath) -> Bool { a.path.utf8.elementsEqual(b.path.utf8) }

    func hash(into hasher: inout Hasher) {
        var path = path
        path.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
