/// The title rules of SPEC §5 for markdown: frontmatter `title`, else the first `# ` heading.
enum Title {
    /// Frontmatter `title` as text: a string trimmed; `42` → "42"; `true` → "true"; a date → its ISO text;
    /// a list → its items' texts joined with ", "; a mapping → its JSON text. Null, empty or blank → nil,
    /// so the next rule applies.
    static func coerce(_ value: JSONValue) -> String? {
        let text: String
        switch value {
        case .null: return nil
        case .string(let s): text = s
        case .number(let n): text = n
        case .bool(let b): text = b ? "true" : "false"
        case .array(let items): text = items.compactMap(coerce).joined(separator: ", ")
        case .object: text = value.jsonText
        }
        let trimmed = trim(text)
        guard !trimmed.isEmpty else { return nil }
        // U+0000 (a YAML "\0") cannot be stored in a text column.
        return trimmed.contains("\u{0}") ? trimmed.replacingNUL() : trimmed
    }

    private static func trim(_ s: String) -> String {
        let scalars = s.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }

    /// The text of the first ATX level-1 heading (`# Title`, up to three spaces before, an optional
    /// closing `#` run), skipping fenced code blocks and indented code; inline markup is kept as written.
    static func firstHeading(_ text: UnsafeBufferPointer<UInt8>) -> String? {
        var fence: (marker: UInt8, length: Int)?
        var i = 0
        while i < text.count {
            let end = Frontmatter.endOfLine(text, from: i)
            defer { i = end + 1 }
            var j = i
            while j < end, j - i < 4, text[j] == 0x20 { j += 1 }
            guard j - i < 4, j < end else { continue }
            let c = text[j]
            if c == UInt8(ascii: "`") || c == UInt8(ascii: "~") {
                var k = j
                while k < end, text[k] == c { k += 1 }
                let run = k - j
                if run >= 3 {
                    if let open = fence {
                        if c == open.marker, run >= open.length, isBlank(text, k, end) { fence = nil }
                    } else if c == UInt8(ascii: "~") || !contains(text, UInt8(ascii: "`"), k, end) {
                        fence = (c, run)
                    }
                    continue
                }
            }
            guard fence == nil, c == UInt8(ascii: "#") else { continue }
            let k = j + 1
            guard k == end || text[k] == 0x20 || text[k] == 0x09 || text[k] == 0x0d else { continue }
            var lo = k
            var hi = end
            while lo < hi, isSpace(text[lo]) { lo += 1 }
            while hi > lo, isSpace(text[hi - 1]) { hi -= 1 }
            // Closing sequence: a run of `#` that is the whole content or follows a space.
            var h = hi
            while h > lo, text[h - 1] == UInt8(ascii: "#") { h -= 1 }
            if h < hi, h == lo || isSpace(text[h - 1]) {
                hi = h
                while hi > lo, isSpace(text[hi - 1]) { hi -= 1 }
            }
            if hi > lo { return String(decoding: UnsafeBufferPointer(rebasing: text[lo..<hi]), as: UTF8.self) }
        }
        return nil
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0d }

    private static func isBlank(_ text: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Bool {
        var i = from
        while i < to { if !isSpace(text[i]) { return false }; i += 1 }
        return true
    }

    private static func contains(_ text: UnsafeBufferPointer<UInt8>, _ byte: UInt8, _ from: Int, _ to: Int) -> Bool {
        var i = from
        while i < to { if text[i] == byte { return true }; i += 1 }
        return false
    }
}

private extension String {
    func replacingNUL() -> String {
        var out = String.UnicodeScalarView()
        for scalar in unicodeScalars { out.append(scalar.value == 0 ? "\u{FFFD}" : scalar) }
        return String(out)
    }
}
