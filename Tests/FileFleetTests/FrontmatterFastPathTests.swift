import Foundation
import Testing
@testable import FileFleet

/// `Frontmatter.simpleMembers` (the fast path) against Yams: on every input either it gives up, or
/// `parse` gives exactly what Yams alone gives.
@Suite struct FrontmatterFastPathTests {
    static let seed = UInt64(ProcessInfo.processInfo.environment["FILEFLEET_FUZZ_SEED"] ?? "") ?? 0x13_f00d

    @Test func generatedFrontmatterIsReadByTheFastPathAsByYams() {
        var rng = SplitMix(seed: Self.seed)
        var failures = 0
        for n in 0..<4_000 {
            let yaml = Generator.frontmatter(&rng)
            let bytes = Array(yaml.utf8)
            let accepted = bytes.withUnsafeBufferPointer { Frontmatter.simpleMembers($0) } != nil
            #expect(accepted, "fast path gave up on #\(n) (seed \(Self.seed)): \(String(reflecting: yaml))")
            if !agree(bytes, "#\(n) (seed \(Self.seed))") { failures += 1 }
            if failures > 5 { break }
        }
    }

    @Test func nearMissesAreReadAsByYamsOrLeftToIt() {
        var rng = SplitMix(seed: Self.seed &+ 1)
        var accepted = 0, failures = 0
        let count = 16_000
        for n in 0..<count {
            var bytes = Array(Generator.frontmatter(&rng).utf8)
            for _ in 0...rng.below(3) { Generator.mutate(&bytes, &rng) }
            if bytes.withUnsafeBufferPointer({ Frontmatter.simpleMembers($0) }) != nil { accepted += 1 }
            if !agree(bytes, "mutant #\(n) (seed \(Self.seed &+ 1))") { failures += 1 }
            if failures > 5 { break }
        }
        // Not vacuous: many mutants stay inside the fast path's grammar, many leave it.
        #expect(accepted > count / 10 && accepted < count * 9 / 10, "fast path accepted \(accepted) of \(count)")
    }

    @Test func trickyScalarsResolveAsOnTheYamsPath() {
        let cases: [(String, String)] = [
            ("a: 1\nb: -1\nc: +1\nd: 0\ne: -0", #"{"a":1,"b":-1,"c":1,"d":0,"e":0}"#),
            ("a: 012\nb: 0o12\nc: 0x1F\nd: 0b101\ne: 1_000\nf: 08", #"{"a":10,"b":10,"c":31,"d":5,"e":1000,"f":8.0}"#),
            ("a: 1:30\nb: 190:20:30\nc: 1:30.5\nd: 12:60", #"{"a":90,"b":685230,"c":90.5,"d":"12:60"}"#),
            ("a: 1.5\nb: 1e3\nc: 1.0e+3\nd: .5\ne: -.5\nf: 1.\ng: 6.8523015e+5", #"{"a":1.5,"b":1000.0,"c":1000.0,"d":0.5,"e":"-.5","f":1.0,"g":685230.15}"#),
            ("a: .inf\nb: -.Inf\nc: .NaN\nd: .nan.", #"{"a":"Infinity","b":"-Infinity","c":"NaN","d":".nan."}"#),
            ("a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: nUll", #"{"a":null,"b":null,"c":null,"d":null,"e":null,"f":"nUll"}"#),
            ("a: yes\nb: No\nc: on\nd: OFF\ne: True\nf: y\ng: n\nh: tRue", #"{"a":true,"b":false,"c":true,"d":false,"e":true,"f":"y","g":"n","h":"tRue"}"#),
            ("a: 2024-01-05\nb: 2024-1-5\nc: 2024-01-05 10:00:00\nd: 2001-12-14t21:59:43.10-05:00\ne: 2024-13-01",
             #"{"a":"2024-01-05","b":"2024-1-5","c":"2024-01-05T10:00:00Z","d":"2001-12-15T02:59:43.1Z","e":"2024-13-01"}"#),
            ("a: '1'\nb: \"yes\"\nc: '~'\nd: ''\ne: \"\"\nf: 'it''s'", #"{"a":"1","b":"yes","c":"~","d":"","e":"","f":"it's"}"#),
            ("a: b:c\nb: http://x.y/z?q=1#f\nc: a#b\nd: x # y\ne: a'b\"c\nf: x [y] {z}", #"{"a":"b:c","b":"http://x.y/z?q=1#f","c":"a#b","d":"x","e":"a'b\"c","f":"x [y] {z}"}"#),
            ("1: a\ntrue: b\n~: c\n2024-01-05: d\nlast updated  : e", #"{"1":"a","true":"b","~":"c","2024-01-05":"d","last updated":"e"}"#),
            ("tags: [a, 1, yes, ~, 'q', \"r s\"]\ne: []\nf: [ x y ,z ]", #"{"tags":["a",1,true,null,"q","r s"],"e":[],"f":["x y","z"]}"#),
            ("tags:\n  - a\n  - 2\n\n  # c\n  - 'x'\nnext:\n- b\n- ~", #"{"tags":["a",2,"x"],"next":["b",null]}"#),
            ("a: 1\r\nb: [x]\r\nc:\r\n  - y\r\n", #"{"a":1,"b":["x"],"c":["y"]}"#),
            ("# only a comment\n\n", "{}"),
            ("", "{}"),
            ("t: ü 😀 \u{a0}x\u{a0}", "{\"t\":\"ü 😀 \u{a0}x\u{a0}\"}"),
        ]
        for (yaml, json) in cases {
            let bytes = Array(yaml.utf8)
            let fast = bytes.withUnsafeBufferPointer { Frontmatter.simpleMembers($0) }
            #expect(fast.map { JSONValue.object($0).jsonText } == json, "fast path: \(String(reflecting: yaml))")
            let yams = bytes.withUnsafeBufferPointer { Frontmatter.parse($0, fastPath: false) }
            #expect((try? yams.get()).map { JSONValue.object($0).jsonText } == json, "Yams: \(String(reflecting: yaml))")
        }
    }

    @Test func leavesAnythingElseToYams() {
        let bail = [
            "a: &x 1\nb: *x", "a: !!str 1", "a: !x 1", "? a\n: b", "a: |\n  x", "a: >\n  x", "a:\n  b: c", "a: {b: c}",
            "a:\tb", "a: b\t", "\ta: b", "a: b\na: c", "é: 1\ne\u{301}: 2", " a: b", "a: b\n c", "a:\n  x",
            "a:\n  - x\n    y", "a:\n  - x\n   - y", "a:\n- x\n  - y", "a: \"x\\ny\"", "a: 'x\n  y'", "a: [x,\n  y]",
            "a: -x", "a: - x", "a: ?x", "a: :x", "a: @x", "a: `x`", "a: %x", "a: |x", "a: ,x", "a: ]x", "---\na: b",
            "...\na: b", "%YAML 1.1\n---\na: b", "<<: {a: b}", "a: b: c", "a: b:", "a:b: c", "a #b: c", "a: [x]y",
            "a: 'x'y", "a: [x, [y]]", "a: [x: y]", "a: [x,]", "a: [x, , y]", "a: [#x]", "a: b\r", "a: b\u{85}c",
            "a: b\u{2028}c", "a: \u{feff}b", "a: b\u{7f}", "- a", "a", "a: [x]#c", "a:\n  -", "a:\n  - # c",
            "a: b\n- c", "x: 1\n  # indented comment ends nothing\n  y: 2",
        ]
        for yaml in bail {
            let bytes = Array(yaml.utf8)
            #expect(bytes.withUnsafeBufferPointer { Frontmatter.simpleMembers($0) } == nil, "\(String(reflecting: yaml))")
            _ = agree(bytes, "bail case")
        }
        for bytes: [UInt8] in [[0x61, 0x3a, 0x20, 0xff], [0x61, 0x3a, 0x20, 0xc0, 0x80], [0x61, 0x3a, 0x20, 0xed, 0xa0, 0x80]] {
            #expect(bytes.withUnsafeBufferPointer { Frontmatter.simpleMembers($0) } == nil, "\(bytes)")
            _ = agree(bytes, "not UTF-8")
        }
    }

    /// The fast path (inside `parse`) and Yams alone give the same members, or the same problem.
    private func agree(_ bytes: [UInt8], _ label: String) -> Bool {
        let (fast, yams) = bytes.withUnsafeBufferPointer { (Frontmatter.parse($0), Frontmatter.parse($0, fastPath: false)) }
        let same: Bool
        switch (fast, yams) {
        case let (.success(a), .success(b)): same = JSONValue.object(a) == JSONValue.object(b)
        case let (.failure(a), .failure(b)): same = a == b
        default: same = false
        }
        #expect(same, "\(label): \(String(reflecting: String(decoding: bytes, as: UTF8.self)))\n fast: \(describe(fast))\n Yams: \(describe(yams))")
        return same
    }

    private func describe(_ result: Result<[(String, JSONValue)], Frontmatter.Problem>) -> String {
        switch result {
        case .success(let members): JSONValue.object(members).jsonText
        case .failure(let problem): "error: \(problem.message)"
        }
    }
}

/// A small seeded generator (SplitMix64): a failure's seed and index reproduce it.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// 0..<n
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// Frontmatter from the fast path's grammar, and mutations that leave it or stay in it.
enum Generator {
    static let keys = ["title", "tags", "created", "rating", "last updated", "a_b", "x.y", "draft", "ключ", "日本語",
                       "1", "0x1F", "true", "null", "~", "2024-01-05", "a'b", "k!", "a&b", "a*b", "k%", "a|b", "a>b",
                       "wide  gap", "é", "+", "=", "a-b", "a\"b", "a@b", ".hidden", "-1"]
    /// Plain scalars for every resolution rule (null, bool, int in every base, float, timestamp, string).
    static let scalars = ["~", "null", "Null", "NULL", "nul", "yes", "Yes", "YES", "no", "No", "on", "On", "off", "OFF",
                          "true", "False", "y", "n", "0", "-0", "+0", "1", "-17", "+17", "012", "08", "0o17", "0o8",
                          "0x1F", "0xg", "-0x1F", "0b101", "0b2", "1_000", "_1", "1__0", "9223372036854775807",
                          "9223372036854775808", "-9223372036854775809", "123456789012345678901234567890", "1:30",
                          "190:20:30", "1:60", "-1:30", "01:30", "1:30.5", "1.5", "-1.5", "1.", ".5", "-.5", "1e3",
                          "1e+3", "1.0e-3", "1.0e", "6.8523015e+5", "685.230_15e+03", ".inf", "-.inf", "+.INF", ".Inf",
                          ".nan", ".NaN", ".NAN", "-.nan", "1.2.3", "2024-01-05", "2024-1-5", "2024-02-30",
                          "2024-13-01", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
                          "2001-12-14T21:59:43Z", "2001-12-14 21:59:43.10", "2002-12-14T25:00:00Z", "12:30:45",
                          "Note 12 about river", "http://x.y/z?q=1#frag", "a#b", "a:b", "ü", "😀 emoji", "it's",
                          "a 'q' word", "a, b", "x [y] {z}", "a!b", "a&b *c", "wide   gap", "x|y>z", "50%", "-x-",
                          "=", "<<", "a\u{a0}b", "\u{a0}", "..."]
    static let words = ["river", "stone", "paper", "x", "é", "日本", "1", "2024", "a_b", "-", "+", ".", "'", "\"", "%",
                        "!", "&", "*", "|", ">", "@", "`", "?", "=", "~", "0x", "e3", "yes"]

    static func frontmatter(_ rng: inout SplitMix) -> String {
        let newline = rng.chance(10) ? "\r\n" : "\n"
        var lines: [String] = []
        var used: [String] = []
        for _ in 0..<rng.below(9) {
            filler(&lines, &rng)
            var key = rng.chance(85) ? rng.pick(keys) : words(&rng, flow: true)
            if !isKey(key) || used.contains(key) { key = "k\(used.count)" }
            used.append(key)
            key += rng.chance(10) ? String(repeating: " ", count: 1 + rng.below(2)) : ""
            switch rng.below(10) {
            case 0...3: lines.append(key + ":" + spaces(&rng) + plain(&rng, flow: false) + tail(&rng))
            case 4: lines.append(key + ":" + spaces(&rng) + quoted(&rng) + tail(&rng))
            case 5, 6:
                var items: [String] = []
                for _ in 0..<rng.below(5) {
                    let item = rng.chance(75) ? plain(&rng, flow: true) : quoted(&rng)
                    items.append(pad(&rng) + item + pad(&rng))
                }
                let list = items.isEmpty ? "[" + pad(&rng) + "]" : "[" + items.joined(separator: ",") + "]"
                lines.append(key + ":" + spaces(&rng) + list + tail(&rng))
            case 7: lines.append(key + ":" + (rng.chance(50) ? "" : spaces(&rng) + "# nothing"))
            default:
                lines.append(key + ":" + tail(&rng))
                let indent = String(repeating: " ", count: rng.pick([0, 1, 2, 2, 4]))
                for _ in 0...rng.below(4) {
                    if rng.chance(15) { lines.append(rng.chance(50) ? "" : indent + "# between items") }
                    let item = rng.chance(75) ? plain(&rng, flow: false) : quoted(&rng)
                    lines.append(indent + "-" + spaces(&rng) + item + tail(&rng))
                }
            }
        }
        filler(&lines, &rng)
        return lines.map { $0 + newline }.joined()
    }

    /// A key the fast path takes: plain, no `:#,[]{}`, not an indicator first, not `<<`.
    static func isKey(_ key: String) -> Bool {
        guard let first = key.utf8.first, !isIndicator(first), key != "<<", !key.hasPrefix("..."),
              key.utf8.last != UInt8(ascii: " ") else { return false }
        return !key.utf8.contains { ":#,[]{}".utf8.contains($0) }
    }

    static func isIndicator(_ c: UInt8) -> Bool { "-?:,[]{}#&*!|>'\"%@`".utf8.contains(c) }

    static func filler(_ lines: inout [String], _ rng: inout SplitMix) {
        if rng.chance(10) { lines.append(String(repeating: " ", count: rng.below(3))) }
        if rng.chance(10) { lines.append(String(repeating: " ", count: rng.below(3)) + "# a comment: with [stuff] 'x") }
    }

    static func spaces(_ rng: inout SplitMix) -> String { String(repeating: " ", count: 1 + (rng.chance(15) ? rng.below(3) : 0)) }
    static func pad(_ rng: inout SplitMix) -> String { rng.chance(30) ? String(repeating: " ", count: rng.below(3)) : "" }

    /// Trailing spaces, or a comment.
    static func tail(_ rng: inout SplitMix) -> String {
        switch rng.below(10) {
        case 0: " # note"
        case 1: String(repeating: " ", count: 1 + rng.below(2))
        case 2: spaces(&rng) + "#" + rng.pick(words)
        default: ""
        }
    }

    /// Plain text the fast path reads in block (or flow) context.
    static func plain(_ rng: inout SplitMix, flow: Bool) -> String {
        while true {
            let text = rng.chance(60) ? rng.pick(scalars) : words(&rng, flow: flow)
            if isPlain(text, flow: flow) { return text }
        }
    }

    static func words(_ rng: inout SplitMix, flow: Bool) -> String {
        var text = ""
        for i in 0...rng.below(4) {
            if i > 0 { text += rng.chance(20) ? "  " : (rng.chance(70) ? " " : "") }
            text += rng.pick(words)
            if rng.chance(15) { text += rng.pick(flow ? ["'", "\"", "!", "&"] : [":", "#", "'", ":x", "[", "]", "{", "}", ","]) }
        }
        return text
    }

    static func isPlain(_ text: String, flow: Bool) -> Bool {
        let b = Array(text.utf8)
        guard let first = b.first, first != UInt8(ascii: " "), b.last != UInt8(ascii: " ") else { return false }
        if first == UInt8(ascii: "-") {
            guard b.count > 1, b[1] == UInt8(ascii: ".") || (b[1] >= 0x30 && b[1] <= 0x39) else { return false }
        } else if isIndicator(first) {
            return false
        }
        for (i, c) in b.enumerated() {
            if flow, ":#,[]{}?".utf8.contains(c) { return false }
            if c == UInt8(ascii: ":"), i + 1 == b.count || b[i + 1] == UInt8(ascii: " ") { return false }
            if c == UInt8(ascii: "#"), i > 0, b[i - 1] == UInt8(ascii: " ") { return false }
        }
        return true
    }

    static func quoted(_ rng: inout SplitMix) -> String {
        let inside = ["", " ", "x", "a b", "#", " # not a comment", ": ", "[a, b]", "yes", "1", "~", "é", "😀", "\u{a0}",
                      "{", "&a", "*a", "!!int", "- x", "'", "\""]
        var text = ""
        for _ in 0..<rng.below(4) { text += rng.pick(inside) }
        if rng.chance(50) {
            return "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
        }
        return "\"" + text.replacingOccurrences(of: "\"", with: "'") + "\""
    }

    /// Bytes that take a text out of the grammar, or keep it in (a space, a letter, a digit, a newline).
    static let pieces: [[UInt8]] = ["\t", "&a ", "*a", "!", "!!str ", ":", ": ", "#", " #", "'", "\"", "\\", "  ", " ",
                                    "é", "e\u{301}", "\u{85}", "\u{2028}", "\u{feff}", "\r", "? ", "|", ">", "{", "}",
                                    "[", "]", ",", "- ", "-", "%", "@", "`", "---", "...", "<<: ", "~", "yes", "0x1F",
                                    "012", "1:20", "2024-01-01", "\n", "\n  ", "\n- ", "\u{7f}", "\u{1}", "x", "7", ".",
                                    "title: ", "\r\n"].map { Array($0.utf8) } + [[0xff], [0xc0, 0x80], [0xe2, 0x82]]

    static func mutate(_ bytes: inout [UInt8], _ rng: inout SplitMix) {
        let at = bytes.isEmpty ? 0 : rng.below(bytes.count + 1)
        switch rng.below(6) {
        case 0, 1, 2: bytes.insert(contentsOf: rng.pick(pieces), at: at)
        case 3: if at < bytes.count { bytes.remove(at: at) }
        case 4: if at < bytes.count { bytes[at] = rng.pick(pieces)[0] }
        default:
            // Repeat a line: duplicate keys, or sequence items.
            let lines = bytes.split(separator: 0x0a, omittingEmptySubsequences: false)
            guard !lines.isEmpty else { return }
            let line = lines[rng.below(lines.count)]
            bytes.append(contentsOf: line + [0x0a])
        }
    }
}
