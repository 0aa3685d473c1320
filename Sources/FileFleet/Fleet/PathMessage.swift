import Foundation

/// What the coordinator publishes for one planned path: the run it belongs to and the path,
/// relative to the source root. The worker reads the root from `sources`, never from here (§6.10).
/// Key: `source/path`, so that one path always lands on one partition.
public struct PathMessage: Sendable, Equatable, Codable {
    public var run: Int64
    public var source: String
    public var path: String

    public init(run: Int64, source: String, path: String) {
        self.run = run
        self.source = source
        self.path = path
    }

    public var key: [UInt8] { Array("\(source)/\(path)".utf8) }

    public func encoded() -> [UInt8] {
        // JSONEncoder cannot fail on three plain fields.
        Array(try! Self.encoder.encode(self))
    }

    /// nil when the bytes are not a well-formed message of this version.
    public static func decode(_ bytes: [UInt8]?) -> PathMessage? {
        guard let bytes, bytes.count < 64 * 1024,
              let message = try? JSONDecoder().decode(PathMessage.self, from: Data(bytes)),
              message.run > 0, !message.source.isEmpty, !message.path.isEmpty else { return nil }
        return message
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}
