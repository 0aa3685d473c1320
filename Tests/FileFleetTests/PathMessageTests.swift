import Foundation
import Testing
@testable import FileFleet

/// The hand-written encoding of a path message is JSON that decodes to the same message, and is
/// byte for byte what JSONEncoder (sorted keys, slashes unescaped) writes, for any path a tree can hold.
@Suite struct PathMessageTests {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    @Test func encodingRoundTripsAndMatchesJSONEncoder() throws {
        var rng = SystemRandomNumberGenerator()
        // Every byte a path component can hold (no NUL, no `/` inside a name), plus multi-byte text.
        let alphabet: [String] = (1..<0x80).map { String(UnicodeScalar(UInt8($0))) } + ["é", "e\u{301}", "日本", "🗂", "\u{2028}", "\u{FEFF}"]
        for i in 0..<5_000 {
            let length = Int.random(in: 1...40, using: &rng)
            let path = (0..<length).map { _ in alphabet.randomElement(using: &rng)! }.joined()
            let message = PathMessage(run: Int64.random(in: 1...Int64.max, using: &rng), source: "src-\(i)\u{1}\"\\", path: path)
            let bytes = message.encoded()
            #expect(PathMessage.decode(bytes) == message, "\(path.debugDescription)")
            // JSONEncoder writes \b and \f as such; the hand encoding writes \u0008 and \u000c (also JSON).
            if !path.utf8.contains(where: { $0 == 0x08 || $0 == 0x0C }) {
                let expected = Array(try Self.encoder.encode(message))
                #expect(bytes == expected, "\(String(decoding: bytes, as: UTF8.self)) vs \(String(decoding: expected, as: UTF8.self))")
            }
        }
    }
}
