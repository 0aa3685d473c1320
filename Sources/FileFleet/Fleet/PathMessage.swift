import FleetCrypto
import Foundation

/// What the coordinator publishes for one planned path: the run it belongs to and the path,
/// relative to the source root, signed with the run's key. The worker reads the root from
/// `sources`, never from here (§6.10). Key: `source/path`, so that one path always lands on one
/// partition.
public struct PathMessage: Sendable, Equatable, Codable {
    public var run: Int64
    public var source: String
    public var path: String
    /// `signature(…)` under the run's message key: the coordinator's word that it planned this path
    /// of this run. nil from a run without a key; a worker checks such a path against the plan.
    public var signature: String?

    enum CodingKeys: String, CodingKey {
        case run, source, path
        case signature = "sig"
    }

    public init(run: Int64, source: String, path: String, signature: String? = nil) {
        self.run = run
        self.source = source
        self.path = path
        self.signature = signature
    }

    /// The message signed with `key` (unsigned when there is none).
    public func signed(with key: [UInt8]?) -> PathMessage {
        var message = self
        message.signature = key.map { Self.signature(run: run, source: source, path: path, key: $0) }
        return message
    }

    /// Whether the message carries the signature `key` gives it.
    public func isSigned(with key: [UInt8]) -> Bool {
        guard let signature else { return false }
        let expected = Self.signature(run: run, source: source, path: path, key: key)
        // Compared whole, not up to the first difference.
        return signature.utf8.count == expected.utf8.count
            && zip(signature.utf8, expected.utf8).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// Hex of the first 16 bytes of HMAC-SHA-256 over the run, the source's length and the source,
    /// and the path: one (run, source, path) gives one text, and no other.
    static func signature(run: Int64, source: String, path: String, key: [UInt8]) -> String {
        SHA256.hmacHex(key: key, Array("\(run)\n\(source.utf8.count)\n\(source)\(path)".utf8), bytes: 16)
    }

    public var key: [UInt8] { Array("\(source)/\(path)".utf8) }

    /// `{"path":…,"run":…,"sig":…,"source":…}`, what JSONEncoder writes with sorted keys, by hand:
    /// JSONEncoder was a fifth of a coordinator's CPU publishing a million paths.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(path.utf8.count + source.utf8.count + 40)
        out.append(contentsOf: #"{"path":"#.utf8)
        Self.appendString(path, to: &out)
        out.append(contentsOf: #","run":"#.utf8)
        out.append(contentsOf: String(run).utf8)
        if let signature {
            out.append(contentsOf: #","sig":"#.utf8)
            Self.appendString(signature, to: &out)
        }
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
              let message = decodeEncoded(bytes) ?? (try? JSONDecoder().decode(PathMessage.self, from: Data(bytes))),
              message.run > 0, !message.source.isEmpty, !message.path.isEmpty else { return nil }
        return message
    }

    /// Exactly what `encoded()` writes, read back by hand: JSONDecoder was 4 % of a worker's CPU.
    /// nil for any other spelling (key order, spaces, escapes `encoded()` does not write), which
    /// JSONDecoder then reads; what this accepts, JSONDecoder reads the same, byte for byte.
    static func decodeEncoded(_ bytes: [UInt8]) -> PathMessage? {
        var i = 0
        func literal(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard i + count <= bytes.count else { return false }
            for k in 0..<count where bytes[i + k] != text.utf8Start[k] { return false }
            i += count
            return true
        }
        func string() -> String? {
            var out: [UInt8] = []
            while i < bytes.count {
                let byte = bytes[i]
                i += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(validating: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard i < bytes.count else { return nil }
                    let escaped = bytes[i]
                    i += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(escaped)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "u"):
                        // `\u00XX`, a control character: what `appendString` writes.
                        guard i + 4 <= bytes.count, bytes[i] == UInt8(ascii: "0"), bytes[i + 1] == UInt8(ascii: "0"),
                              let high = hexDigit(bytes[i + 2]), high < 2, let low = hexDigit(bytes[i + 3]) else { return nil }
                        out.append(high << 4 | low)
                        i += 4
                    default: return nil
                    }
                case 0..<0x20: return nil
                default: out.append(byte)
                }
            }
            return nil
        }
        guard literal(#"{"path":""#), let path = string(), literal(#","run":"#),
              i < bytes.count, bytes[i] >= UInt8(ascii: "1"), bytes[i] <= UInt8(ascii: "9") else { return nil }
        var run: Int64 = 0
        while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") {
            let (times, o1) = run.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(Int64(bytes[i] - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            run = sum
            i += 1
        }
        var signature: String?
        if literal(#","sig":""#) {
            guard let sig = string() else { return nil }
            signature = sig
        }
        guard literal(#","source":""#), let source = string(), literal("}"), i == bytes.count else { return nil }
        return PathMessage(run: run, source: source, path: path, signature: signature)
    }

    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
