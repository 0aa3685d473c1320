import FleetCalendar

/// Resolves untagged plain YAML scalars the way Yams' default resolver (YAML 1.1, like PyYAML) would —
/// null, bool, int, float, timestamp, else string — without its per-scalar regular expressions, and turns
/// them into JSON. What JSON cannot hold becomes a string: timestamps as ISO-8601 text, `.nan`/`.inf` as
/// `"NaN"`/`"Infinity"`/`"-Infinity"` (the spellings PostgreSQL's float8 reads back).
enum YAMLScalar {
    static func resolvePlain(_ text: String) -> JSONValue {
        guard let first = text.utf8.first else { return .null }
        // Most text is none of these: the first byte and the length rule out the comparisons.
        let count = text.utf8.count
        switch first {
        case UInt8(ascii: "~"), UInt8(ascii: "n"), UInt8(ascii: "N"):
            if count <= 4, isNull(text) { return .null }
        default: break
        }
        switch first {
        case UInt8(ascii: "y"), UInt8(ascii: "Y"), UInt8(ascii: "t"), UInt8(ascii: "T"), UInt8(ascii: "o"),
             UInt8(ascii: "O"), UInt8(ascii: "n"), UInt8(ascii: "N"), UInt8(ascii: "f"), UInt8(ascii: "F"):
            if count <= 5, let bool = bool(text) { return .bool(bool) }
        default: break
        }
        let numeric = first == UInt8(ascii: "-") || first == UInt8(ascii: "+") || first == UInt8(ascii: ".")
            || isDigit(first)
        guard numeric else { return .string(text) }
        let b = Array(text.utf8)
        if let kind = intKind(b) { return int(b, kind: kind) ?? .string(text) }
        if isFloat(b) { return float(b) ?? .string(text) }
        if let iso = timestamp(b) { return .string(iso) }
        return .string(text)
    }

    static func isNull(_ text: String) -> Bool {
        text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
    }

    static func bool(_ text: String) -> Bool? {
        switch text {
        case "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON": true
        case "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF": false
        default: nil
        }
    }

    /// For an explicit `!!int`.
    static func explicitInt(_ text: String) -> JSONValue? {
        let b = Array(text.utf8)
        return intKind(b).flatMap { int(b, kind: $0) }
    }

    /// For an explicit `!!float`.
    static func explicitFloat(_ text: String) -> JSONValue? {
        let b = Array(text.utf8)
        if let kind = intKind(b) { return int(b, kind: kind) }
        return isFloat(b) ? float(b) : nil
    }

    static func explicitTimestamp(_ text: String) -> String? { timestamp(Array(text.utf8)) }

    // MARK: - int

    enum IntKind { case binary, octal, decimal, hex, sexagesimal }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    private static func isHex(_ c: UInt8) -> Bool {
        isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
    }

    private static func signLength(_ b: [UInt8]) -> Int {
        !b.isEmpty && (b[0] == UInt8(ascii: "-") || b[0] == UInt8(ascii: "+")) ? 1 : 0
    }

    /// Count of bytes from `i` satisfying `ok` or `_`.
    private static func run(_ b: [UInt8], from i: Int, _ ok: (UInt8) -> Bool) -> Int {
        var j = i
        while j < b.count, ok(b[j]) || b[j] == UInt8(ascii: "_") { j += 1 }
        return j - i
    }

    static func intKind(_ b: [UInt8]) -> IntKind? {
        let s = signLength(b)
        let rest = b.count - s
        guard rest > 0 else { return nil }
        if b[s] == UInt8(ascii: "0") {
            if rest == 1 { return .decimal }
            let p = b[s + 1]
            if p == UInt8(ascii: "b"), rest > 2, run(b, from: s + 2, { $0 == 0x30 || $0 == 0x31 }) == rest - 2 {
                return .binary
            }
            if p == UInt8(ascii: "x"), rest > 2, run(b, from: s + 2, isHex) == rest - 2 { return .hex }
            let start = p == UInt8(ascii: "o") ? s + 2 : s + 1
            if start < b.count, run(b, from: start, { $0 >= 0x30 && $0 <= 0x37 }) == b.count - start { return .octal }
            return nil
        }
        guard b[s] >= UInt8(ascii: "1"), b[s] <= UInt8(ascii: "9") else { return nil }
        let head = 1 + run(b, from: s + 1, isDigit)
        if s + head == b.count { return .decimal }
        // [1-9][0-9_]*(:[0-5]?[0-9])+
        var i = s + head
        guard sexagesimalTail(b, &i), i == b.count else { return nil }
        return .sexagesimal
    }

    /// Consumes `(:[0-5]?[0-9])+` from `i`; false when there is not at least one group.
    private static func sexagesimalTail(_ b: [UInt8], _ i: inout Int) -> Bool {
        var groups = 0
        while i < b.count, b[i] == UInt8(ascii: ":") {
            var j = i + 1
            if j + 1 < b.count, b[j] >= 0x30, b[j] <= 0x35, isDigit(b[j + 1]) {
                j += 2
            } else if j < b.count, isDigit(b[j]) {
                j += 1
            } else {
                return false
            }
            i = j
            groups += 1
        }
        return groups > 0
    }

    private static func digits(_ b: [UInt8], from i: Int) -> String {
        guard b[i...].contains(UInt8(ascii: "_")) else { return String(decoding: b[i...], as: UTF8.self) }
        return String(decoding: b[i...].filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
    }

    /// Digits of the longest integer kept as a JSON number.
    static let maxDigits = 1000

    static func int(_ b: [UInt8], kind: IntKind) -> JSONValue? {
        let s = signLength(b)
        let negative = s == 1 && b[0] == UInt8(ascii: "-")
        let magnitude: String
        let radix: Int
        switch kind {
        case .binary: magnitude = digits(b, from: s + 2); radix = 2
        case .hex: magnitude = digits(b, from: s + 2); radix = 16
        case .octal:
            magnitude = digits(b, from: b[s + 1] == UInt8(ascii: "o") ? s + 2 : s + 1); radix = 8
        case .decimal:
            let text = digits(b, from: s)
            if let value = Int64(text) { return .number(String(negative ? -value : value)) }
            // Longer than Int64: still an exact JSON number, jsonb keeps it as numeric, up to a
            // length no real value has; longer (numeric refuses past 131,072 digits) it is text (SPEC §5).
            guard text.utf8.count <= maxDigits else { return .string(String(decoding: b, as: UTF8.self)) }
            return .number((negative ? "-" : "") + text)
        case .sexagesimal:
            var value: Int64 = 0
            for part in digits(b, from: s).split(separator: ":") {
                guard let v = Int64(part) else { return nil }
                let (m, o1) = value.multipliedReportingOverflow(by: 60)
                let (sum, o2) = m.addingReportingOverflow(v)
                if o1 || o2 { return nil }
                value = sum
            }
            return .number(String(negative ? -value : value))
        }
        guard !magnitude.isEmpty, let value = Int64(magnitude, radix: radix) else { return nil }
        return .number(String(negative ? -value : value))
    }

    // MARK: - float

    static func isFloat(_ b: [UInt8]) -> Bool {
        let s = signLength(b)
        guard s < b.count else { return false }
        // [-+]?\.(inf|Inf|INF) and \.(nan|NaN|NAN)
        if b[s] == UInt8(ascii: "."), b.count - s == 4 {
            let word = String(decoding: b[(s + 1)...], as: UTF8.self)
            if ["inf", "Inf", "INF"].contains(word) { return true }
            if s == 0, ["nan", "NaN", "NAN"].contains(word) { return true }
        }
        // \.[0-9_]+([eE][-+][0-9]+)?
        if s == 0, b[0] == UInt8(ascii: ".") {
            var i = 1
            let n = run(b, from: i, isDigit)
            guard n > 0 else { return false }
            i += n
            if i == b.count { return true }
            guard b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E"), i + 1 < b.count,
                  b[i + 1] == UInt8(ascii: "-") || b[i + 1] == UInt8(ascii: "+") else { return false }
            i += 2
            var digits = 0
            while i < b.count, isDigit(b[i]) { i += 1; digits += 1 }
            return digits > 0 && i == b.count
        }
        guard isDigit(b[s]) else { return false }
        var i = s + 1 + run(b, from: s + 1, isDigit)
        if i == b.count { return true }
        if b[i] == UInt8(ascii: ":") {
            // [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*
            guard sexagesimalTail(b, &i), i < b.count, b[i] == UInt8(ascii: ".") else { return false }
            i += 1
            return i + run(b, from: i, isDigit) == b.count
        }
        if b[i] == UInt8(ascii: ".") {
            i += 1
            i += run(b, from: i, isDigit)
            if i == b.count { return true }
        }
        guard b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") else { return false }
        i += 1
        if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
        var digits = 0
        while i < b.count, isDigit(b[i]) { i += 1; digits += 1 }
        return digits > 0 && i == b.count
    }

    static func float(_ b: [UInt8]) -> JSONValue? {
        let text = String(decoding: b.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
        let lower = text.lowercased()
        let value: Double?
        switch lower {
        case ".inf", "+.inf": value = .infinity
        case "-.inf": value = -.infinity
        case ".nan": value = .nan
        default:
            if text.contains(":") {
                var negative = false
                var body = text[...]
                if body.hasPrefix("-") { negative = true; body = body.dropFirst() } else if body.hasPrefix("+") {
                    body = body.dropFirst()
                }
                var total = 0.0
                for part in body.split(separator: ":", omittingEmptySubsequences: false) {
                    guard let v = Double(part) else { return nil }
                    total = total * 60 + v
                }
                value = negative ? -total : total
            } else {
                value = Double(text.hasSuffix(".") ? text + "0" : text)
            }
        }
        guard let value else { return nil }
        return number(value)
    }

    static func number(_ value: Double) -> JSONValue {
        if value.isNaN { return .string("NaN") }
        if value.isInfinite { return .string(value < 0 ? "-Infinity" : "Infinity") }
        return .number(value.description)
    }

    // MARK: - timestamp

    /// ISO-8601 text for a YAML timestamp: a date alone stays `YYYY-MM-DD`; a date and time becomes UTC,
    /// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (no zone means UTC, as YAML says). Nil when not a timestamp or
    /// not a real date/time (month 13, hour 25).
    static func timestamp(_ b: [UInt8]) -> String? {
        var i = 0
        func number(_ minDigits: Int, _ maxDigits: Int) -> Int? {
            var n = 0
            var count = 0
            while i < b.count, count < maxDigits, isDigit(b[i]) {
                n = n * 10 + Int(b[i] - 0x30)
                i += 1
                count += 1
            }
            return count >= minDigits ? n : nil
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = number(4, 4), expect(UInt8(ascii: "-")), let month = number(1, 2),
              expect(UInt8(ascii: "-")), let day = number(1, 2) else { return nil }
        guard (1...12).contains(month), (1...31).contains(day) else { return nil }
        if i == b.count {
            // The date-only form needs two-digit month and day.
            return b.count == 10 ? String(decoding: b, as: UTF8.self) : nil
        }
        if b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") {
            i += 1
        } else {
            let start = i
            while i < b.count, b[i] == 0x20 || b[i] == 0x09 { i += 1 }
            guard i > start else { return nil }
        }
        guard let hour = number(1, 2), expect(UInt8(ascii: ":")), let minute = number(2, 2),
              expect(UInt8(ascii: ":")), let second = number(2, 2) else { return nil }
        guard hour <= 24, minute <= 59, second <= 60 else { return nil }
        var fraction = ""
        if expect(UInt8(ascii: ".")) {
            let start = i
            while i < b.count, isDigit(b[i]) { i += 1 }
            var digits = b[start..<i]
            while let last = digits.last, last == 0x30 { digits = digits.dropLast() }
            fraction = String(decoding: digits, as: UTF8.self)
        }
        var offset = 0
        if i < b.count {
            while i < b.count, b[i] == 0x20 || b[i] == 0x09 { i += 1 }
            if expect(UInt8(ascii: "Z")) {
            } else if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
                i += 1
                guard let h = number(1, 2) else { return nil }
                var m = 0
                if expect(UInt8(ascii: ":")) {
                    guard let mm = number(2, 2) else { return nil }
                    m = mm
                }
                offset = sign * (h * 3600 + m * 60)
            } else {
                return nil
            }
            guard i == b.count else { return nil }
        }
        let seconds = CivilDate.days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let rest = seconds - days * 86_400
        let (y, m, d) = CivilDate.date(days: days)
        var out = CivilDate.pad(y, 4) + "-" + CivilDate.pad(m, 2) + "-" + CivilDate.pad(d, 2)
        out += "T" + CivilDate.pad(rest / 3600, 2) + ":" + CivilDate.pad(rest % 3600 / 60, 2) + ":" + CivilDate.pad(rest % 60, 2)
        if !fraction.isEmpty { out += "." + fraction }
        return out + "Z"
    }
}
