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

    /// `{"path":…,"run":…,"source":…}`, what JSONEncoder writes with sorted keys, written by hand:
    /// JSONEncoder was a fifth of a coordinator's CPU publishing a million paths.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(path.utf8.count + source.utf8.count + 40)
        out.append(contentsOf: #"{"path":"#.utf8)
        Self.appendString(path, to: &out)
        out.append(contentsOf: #","run":"#.utf8)
        out.append(contentsOf: String(run).utf8)
        out.append(contentsOf: #","source":"#.utf8)
        Self.appendString(source, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// A JSON string: quote, backslash and control characters escaped, everything else as UTF-8.
    static func appendString(_ string: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
            case 0x0A: out.append(contentsOf: #"\n"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0x0D: out.append(contentsOf: #"\r"#.utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// nil when the bytes are not a well-formed message of this version.
    public static func decode(_ bytes: [UInt8]?) -> PathMessage? {
        guard let bytes, bytes.count < 64 * 1024,
              let message = try? JSONDecoder().decode(PathMessage.self, from: Data(bytes)),
              message.run > 0, !message.source.isEmpty, !message.path.isEmpty else { return nil }
        return message
    }
}
