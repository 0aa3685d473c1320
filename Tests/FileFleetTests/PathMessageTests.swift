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

    /// The hand-written reader agrees with JSONDecoder on every message `encoded()` writes and on
    /// bytes near them (flipped, cut, inserted, other spellings): it reads a message exactly as
    /// JSONDecoder does (byte for byte), or leaves it to JSONDecoder.
    @Test func handReadingAgreesWithJSONDecoder() throws {
        var rng = SystemRandomNumberGenerator()
        let alphabet: [String] = (1..<0x80).map { String(UnicodeScalar(UInt8($0))) } + ["é", "e\u{301}", "日本", "🗂", "\u{2028}"]
        let inserts: [[UInt8]] = [#"\u00e9"#, #"\/"#, #"\b"#, #"\u001f"#, #"\u0000"#, #"\"#, " ", "\n", "0", "-", "\u{FF}", "\u{80}"]
            .map { Array($0.utf8) }
        var handRead = 0
        for i in 0..<5_000 {
            let length = Int.random(in: 1...30, using: &rng)
            let path = (0..<length).map { _ in alphabet.randomElement(using: &rng)! }.joined()
            let run = [1, 9, 10, Int64.max, Int64.random(in: 1...Int64.max, using: &rng)].randomElement(using: &rng)!
            var bytes = PathMessage(run: run, source: "s\(i)", path: path).encoded()
            if i % 4 != 0 {
                let at = Int.random(in: 0...bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0 where at < bytes.count: bytes[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
                case 1: bytes.removeSubrange(at...)
                default: bytes.insert(contentsOf: inserts.randomElement(using: &rng)!, at: at)
                }
            }
            let byHand = PathMessage.decodeEncoded(bytes)
            if i % 4 == 0 { #expect(byHand != nil, "what encoded() writes is read by hand: \(String(decoding: bytes, as: UTF8.self))") }
            let decoded = try? JSONDecoder().decode(PathMessage.self, from: Data(bytes))
            if let byHand {
                handRead += 1
                #expect(decoded.map { Array($0.path.utf8) == Array(byHand.path.utf8) && Array($0.source.utf8) == Array(byHand.source.utf8)
                                       && $0.run == byHand.run } == true,
                        "\(String(decoding: bytes, as: UTF8.self).debugDescription): by hand \(byHand), JSONDecoder \(String(describing: decoded))")
            }
        }
        #expect(handRead > 1_250)  // the 1,250 unchanged messages and mutations that are still messages
        // Other spellings of the same message are JSONDecoder's to read.
        let spaced = Array(#"{ "path": "a.md", "run": 1, "source": "s" }"#.utf8)
        #expect(PathMessage.decodeEncoded(spaced) == nil)
        #expect(PathMessage.decode(spaced) == PathMessage(run: 1, source: "s", path: "a.md"))
    }
}
