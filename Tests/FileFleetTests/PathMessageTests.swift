import FleetCrypto
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

    /// HMAC-SHA-256 as RFC 4231 gives it (test cases 1, 2 and 6: a key longer than a block).
    @Test func hmacMatchesRFC4231() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        #expect(hex(SHA256.hmac(key: Array(repeating: 0x0b, count: 20), Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(hex(SHA256.hmac(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(hex(SHA256.hmac(key: Array(repeating: 0xaa, count: 131),
                                Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    /// A signature holds for its run, source and path under its key, and for nothing else; it
    /// survives the hand encoding and JSONDecoder alike.
    @Test func signaturesBindRunSourceAndPath() throws {
        let key = RunStore.newMessageKey()
        #expect(key.count == 32 && key != RunStore.newMessageKey())
        let message = PathMessage(run: 7, source: "notes", path: "a/b.md").signed(with: key)
        #expect(message.signature?.utf8.count == 32)
        #expect(message.isSigned(with: key))
        #expect(!message.isSigned(with: RunStore.newMessageKey()))
        #expect(!PathMessage(run: 7, source: "notes", path: "a/b.md").isSigned(with: key))
        for other in [PathMessage(run: 8, source: "notes", path: "a/b.md"), PathMessage(run: 7, source: "notes2", path: "a/b.md"),
                      PathMessage(run: 7, source: "note", path: "sa/b.md"), PathMessage(run: 7, source: "notes", path: "a/b.mdx"),
                      PathMessage(run: 7, source: "notes", path: "a/b.md\u{301}")] {
            var forged = other
            forged.signature = message.signature
            #expect(!forged.isSigned(with: key), "\(other)")
        }
        let bytes = message.encoded()
        #expect(PathMessage.decodeEncoded(bytes) == message)
        #expect(try JSONDecoder().decode(PathMessage.self, from: Data(bytes)) == message)
        #expect(bytes == Array(try Self.encoder.encode(message)))
        #expect(PathMessage(run: 7, source: "s", path: "p").signed(with: nil).signature == nil)
    }
}
