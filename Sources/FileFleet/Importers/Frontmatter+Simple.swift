extension Frontmatter {
    /// The members of frontmatter written the way notes are, read without Yams (issue 13: Yams was ~30 % of
    /// the CPU per file): `key: value` lines at the left margin; a value is a one-line plain or quoted
    /// scalar, a one-line `[a, 'b']` list of them, nothing, or `- item` lines under a key with nothing;
    /// comments and blank lines. Scalars resolve exactly as on the Yams path. Nil when the text is anything
    /// else, or might be (tabs, anchors, tags, escapes, block scalars, nesting, duplicate keys, errors…):
    /// Yams decides those.
    static func simpleMembers(_ yaml: UnsafeBufferPointer<UInt8>) -> [(String, JSONValue)]? {
        guard SimpleBlock.isPlainText(yaml) else { return nil }
        return SimpleBlock(text: yaml).members()
    }
}

/// The reader behind `Frontmatter.simpleMembers`: it accepts a subset of YAML on which it agrees with libyaml
/// (the differential test checks that), and gives up on the first byte outside it.
private struct SimpleBlock {
    let text: UnsafeBufferPointer<UInt8>

    private static let space = UInt8(ascii: " "), hash = UInt8(ascii: "#"), colon = UInt8(ascii: ":")
    private static let dash = UInt8(ascii: "-"), dot = UInt8(ascii: "."), comma = UInt8(ascii: ",")
    private static let openBracket = UInt8(ascii: "["), closeBracket = UInt8(ascii: "]")
    private static let singleQuote = UInt8(ascii: "'"), doubleQuote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")

    /// Valid UTF-8 that libyaml reads unchanged and breaks only at `\n`: no control character (tab
    /// included), `\r` only before `\n`, no BOM, no NEL/LS/PS, nothing libyaml refuses (U+FFFE, U+FFFF).
    static func isPlainText(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        while i < b.count {
            let c = b[i]
            if c >= 0x20 && c < 0x7f || c == 0x0a {
                i += 1
                continue
            }
            if c == 0x0d {
                guard i + 1 < b.count, b[i + 1] == 0x0a else { return false }
                i += 2
                continue
            }
            let length: Int, minimum: UInt32
            var scalar: UInt32
            switch c {
            case 0xc2...0xdf: length = 2; minimum = 0x80; scalar = UInt32(c & 0x1f)
            case 0xe0...0xef: length = 3; minimum = 0x800; scalar = UInt32(c & 0x0f)
            case 0xf0...0xf4: length = 4; minimum = 0x10000; scalar = UInt32(c & 0x07)
            default: return false
            }
            guard i + length <= b.count else { return false }
            for k in 1..<length {
                let d = b[i + k]
                guard d & 0xc0 == 0x80 else { return false }
                scalar = scalar << 6 | UInt32(d & 0x3f)
            }
            guard scalar >= minimum else { return false }
            switch scalar {
            case 0x2028, 0x2029, 0xfeff: return false
            case 0xa0...0xd7ff, 0xe000...0xfffd, 0x10000...0x10ffff: break
            default: return false
            }
            i += length
        }
        return true
    }

    /// The characters that cannot start a plain scalar, or start a different token.
    private static func isIndicator(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "-"), UInt8(ascii: "?"), UInt8(ascii: ":"), UInt8(ascii: ","), UInt8(ascii: "["),
             UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "#"), UInt8(ascii: "&"),
             UInt8(ascii: "*"), UInt8(ascii: "!"), UInt8(ascii: "|"), UInt8(ascii: ">"), UInt8(ascii: "'"),
             UInt8(ascii: "\""), UInt8(ascii: "%"), UInt8(ascii: "@"), UInt8(ascii: "`"):
            true
        default:
            false
        }
    }

    func members() -> [(String, JSONValue)]? {
        var members: [(String, JSONValue)] = []
        members.reserveCapacity(8)
        var keys: Set<String> = []
        /// A key whose line ended after its `:`: null, unless `- item` lines follow.
        var openKey: String?
        var items: [JSONValue]?
        var itemIndent = 0

        func add(_ key: String, _ value: JSONValue) -> Bool {
            if members.count < 16 {
                if members.contains(where: { $0.0 == key }) { return false }
            } else {
                if keys.isEmpty { keys = Set(members.map(\.0)) }
                guard keys.insert(key).inserted else { return false }
            }
            members.append((key, value))
            return true
        }
        func closeOpenKey() -> Bool {
            guard let key = openKey else { return true }
            openKey = nil
            defer { items = nil }
            return add(key, items.map(JSONValue.array) ?? YAMLScalar.resolvePlain(""))
        }

        var lineStart = 0
        while lineStart < text.count {
            var end = lineStart
            while end < text.count, text[end] != 0x0a { end += 1 }
            let nextLine = end + 1
            if end > lineStart, text[end - 1] == 0x0d { end -= 1 }
            defer { lineStart = nextLine }

            var i = lineStart
            while i < end, text[i] == Self.space { i += 1 }
            if i == end || text[i] == Self.hash { continue }
            let indent = i - lineStart

            if text[i] == Self.dash, i + 1 == end || text[i + 1] == Self.space {
                guard openKey != nil, items == nil || indent == itemIndent else { return nil }
                if items == nil { items = []; itemIndent = indent }
                var j = i + 1
                while j < end, text[j] == Self.space { j += 1 }
                guard j < end, text[j] != Self.hash, let item = lineScalar(j, end) else { return nil }
                items?.append(item)
                continue
            }
            guard indent == 0, closeOpenKey() else { return nil }

            let c = text[i]
            guard !Self.isIndicator(c) else { return nil }
            if c == Self.dot, end - i >= 3, text[i + 1] == Self.dot, text[i + 2] == Self.dot { return nil }
            var j = i
            var keyEnd = i
            while true {
                guard j < end else { return nil }
                let d = text[j]
                if d == Self.colon {
                    guard j + 1 == end || text[j + 1] == Self.space else { return nil }
                    break
                }
                switch d {
                case Self.hash, Self.comma, Self.openBracket, Self.closeBracket, UInt8(ascii: "{"), UInt8(ascii: "}"):
                    return nil
                case Self.space: break
                default: keyEnd = j + 1
                }
                j += 1
            }
            guard keyEnd - i <= 512 else { return nil }
            let key = string(i, keyEnd)
            guard key != "<<" else { return nil }

            j += 1
            while j < end, text[j] == Self.space { j += 1 }
            if j == end || text[j] == Self.hash {
                openKey = key
                continue
            }
            let value: JSONValue
            if text[j] == Self.openBracket {
                guard let (list, after) = flowSequence(j, end), restIsBlank(after, end) else { return nil }
                value = .array(list)
            } else {
                guard let scalar = lineScalar(j, end) else { return nil }
                value = scalar
            }
            guard add(key, value) else { return nil }
        }
        guard closeOpenKey() else { return nil }
        return members
    }

    private func string(_ start: Int, _ end: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: text[start..<end]), as: UTF8.self)
    }

    /// A plain scalar may start with `-` before a digit or `.` (`-1`, `-.5`); with no other indicator.
    private func canStartPlain(_ i: Int, _ end: Int) -> Bool {
        let c = text[i]
        if c == Self.dash {
            guard i + 1 < end else { return false }
            let d = text[i + 1]
            return d == Self.dot || (d >= 0x30 && d <= 0x39)
        }
        return !Self.isIndicator(c)
    }

    /// After a closing quote or bracket: nothing, spaces, or spaces and a comment.
    private func restIsBlank(_ i: Int, _ end: Int) -> Bool {
        var j = i
        while j < end, text[j] == Self.space { j += 1 }
        return j == end || (j > i && text[j] == Self.hash)
    }

    /// A scalar that ends with its line (a comment may follow): plain, or quoted on this one line.
    private func lineScalar(_ i: Int, _ end: Int) -> JSONValue? {
        let c = text[i]
        if c == Self.singleQuote || c == Self.doubleQuote {
            guard let (quoted, after) = quoted(i, end), restIsBlank(after, end) else { return nil }
            return .string(quoted)
        }
        guard canStartPlain(i, end) else { return nil }
        var j = i
        var last = i
        while j < end {
            let d = text[j]
            if d == Self.colon {
                // `a: b: c` is an error, `a: b:` too; `a: b:c` is the text `b:c`.
                if j + 1 == end || text[j + 1] == Self.space { return nil }
            } else if d == Self.hash, text[j - 1] == Self.space {
                break
            }
            if d != Self.space { last = j + 1 }
            j += 1
        }
        return YAMLScalar.resolvePlain(string(i, last))
    }

    /// A quoted scalar closed on its line: its text and the index after the closing quote. Nil for any
    /// backslash in double quotes (escapes are Yams' business).
    private func quoted(_ i: Int, _ end: Int) -> (String, Int)? {
        let quote = text[i]
        var j = i + 1
        var doubled = false
        while j < end {
            let c = text[j]
            if c == Self.backslash, quote == Self.doubleQuote { return nil }
            if c == quote {
                if quote == Self.singleQuote, j + 1 < end, text[j + 1] == Self.singleQuote {
                    doubled = true
                    j += 2
                    continue
                }
                guard doubled else { return (string(i + 1, j), j + 1) }
                var bytes: [UInt8] = []
                var k = i + 1
                while k < j {
                    bytes.append(text[k])
                    k += text[k] == Self.singleQuote ? 2 : 1
                }
                return (String(decoding: bytes, as: UTF8.self), j + 1)
            }
            j += 1
        }
        return nil
    }

    /// `[a, 'b', c]` closed on its line: the items and the index after the `]`.
    private func flowSequence(_ i: Int, _ end: Int) -> ([JSONValue], Int)? {
        var items: [JSONValue] = []
        var j = i + 1
        while j < end, text[j] == Self.space { j += 1 }
        if j < end, text[j] == Self.closeBracket { return (items, j + 1) }
        items.reserveCapacity(4)
        while j < end {
            let c = text[j]
            if c == Self.singleQuote || c == Self.doubleQuote {
                guard let (quoted, after) = quoted(j, end) else { return nil }
                items.append(.string(quoted))
                j = after
            } else {
                guard canStartPlain(j, end) else { return nil }
                let start = j
                var last = j
                scan: while j < end {
                    switch text[j] {
                    case Self.comma, Self.closeBracket: break scan
                    case Self.colon, Self.hash, Self.openBracket, UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "?"):
                        return nil
                    case Self.space: break
                    default: last = j + 1
                    }
                    j += 1
                }
                items.append(YAMLScalar.resolvePlain(string(start, last)))
            }
            while j < end, text[j] == Self.space { j += 1 }
            guard j < end else { return nil }
            if text[j] == Self.closeBracket { return (items, j + 1) }
            guard text[j] == Self.comma else { return nil }
            j += 1
            while j < end, text[j] == Self.space { j += 1 }
        }
        return nil
    }
}
