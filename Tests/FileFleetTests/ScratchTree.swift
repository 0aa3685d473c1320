import Foundation

/// A fresh directory for one test, removed with it: `<base>/root` is the source root, and the
/// rest of `<base>` is for what must stay outside it.
final class ScratchTree: Sendable {
    let base: String
    let root: String

    init(_ kind: String) throws {
        base = NSTemporaryDirectory() + "filefleet-\(kind)-" + UUID().uuidString
        root = base + "/root"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        chmod(base, 0o755)
    }

    deinit { try? FileManager.default.removeItem(atPath: base) }

    /// Writes `text` at `relative` under the root (`../` reaches outside it), creating directories.
    func write(_ relative: String, _ text: String) throws {
        let path = root + "/" + relative
        // The parent found byte-wise: Foundation's path functions miss a `/` that a combining mark follows.
        let parent = String(decoding: path.utf8[..<path.utf8.lastIndex(of: UInt8(ascii: "/"))!], as: UTF8.self)
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func link(_ relative: String, to target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: root + "/" + relative, withDestinationPath: target)
    }
}
