import FleetCalendar
public import Foundation

/// A Swift value that can be read from a result column (results arrive in Postgres' text format).
public protocol PostgresDecodable: Sendable {
    init(postgresText text: String, type: PostgresType) throws
    /// The value for SQL NULL; only optionals have one.
    static func postgresNull() throws -> Self
}

extension PostgresDecodable {
    public static func postgresNull() throws -> Self { throw PostgresDecodingError.unexpectedNull }
}

/// A column could not be decoded as the requested Swift type.
public struct PostgresDecodingError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case unexpectedNull, malformed, missingColumn }
    public var kind: Kind
    public var column: String = ""
    public var postgresType: PostgresType = .unspecified
    public var swiftType: String = ""

    static let unexpectedNull = PostgresDecodingError(kind: .unexpectedNull)
    static let malformed = PostgresDecodingError(kind: .malformed)

    public var description: String {
        switch kind {
        case .unexpectedNull: return "column \(column) is NULL; decode \(swiftType)? instead"
        case .malformed: return "column \(column) (\(postgresType)) is not a valid \(swiftType)"
        case .missingColumn: return "no column \(column) in the result"
        }
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws {
        self = .some(try Wrapped(postgresText: text, type: type))
    }
    public static func postgresNull() throws -> Self { nil }
}

extension String: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws { self = text }
}

extension FixedWidthInteger where Self: PostgresDecodable {
    fileprivate static func parse(_ text: String) throws -> Self {
        guard let value = Self(text) else { throw PostgresDecodingError.malformed }
        return value
    }
}

extension Int: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws { self = try Self.parse(text) }
}

extension Int64: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws { self = try Self.parse(text) }
}

extension Int32: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws { self = try Self.parse(text) }
}

extension Int16: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws { self = try Self.parse(text) }
}

extension Bool: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws {
        switch text {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw PostgresDecodingError.malformed
        }
    }
}

extension Double: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws {
        guard let value = Double(text) else { throw PostgresDecodingError.malformed }
        self = value
    }
}

extension Date: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws {
        guard let date = PostgresTimestamp.parse(text) else { throw PostgresDecodingError.malformed }
        self = date
    }
}

extension Data: PostgresDecodable {
    /// bytea arrives as bytes; any other type (jsonb, text) as its UTF-8 text.
    public init(postgresText text: String, type: PostgresType) throws {
        self = Data(try UInt8.postgresArray(fromText: text, type: type))
    }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
    public init(postgresText text: String, type: PostgresType) throws {
        self = try Element.postgresArray(fromText: text, type: type)
    }
}

extension PostgresJSON: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws { self.init(text) }
}

/// timestamptz text I/O; the session runs with TimeZone UTC and DateStyle ISO.
public enum PostgresTimestamp {
    static func format(_ date: Date) -> String {
        if date == .distantFuture { return "infinity" }
        if date == .distantPast { return "-infinity" }
        return format(micros: Int64((date.timeIntervalSince1970 * 1_000_000).rounded()))
    }

    /// timestamptz text for microseconds since the epoch, exact (no floating point on the way).
    public static func format(micros: Int64) -> String {
        let (days, dayMicros) = floorDivMod(micros, 86_400_000_000)
        let (y, m, d) = CivilDate.date(days: Int(days))
        let seconds = dayMicros / 1_000_000
        let fraction = dayMicros % 1_000_000
        // Year 0 is 1 BC, -1 is 2 BC: PostgreSQL spells them with a suffix, never a sign.
        var text = CivilDate.pad(y > 0 ? y : 1 - y, 4) + "-" + CivilDate.pad(m, 2) + "-" + CivilDate.pad(d, 2) + " "
        text += CivilDate.pad(seconds / 3600, 2) + ":" + CivilDate.pad(seconds / 60 % 60, 2) + ":" + CivilDate.pad(seconds % 60, 2)
        if fraction != 0 { text += "." + CivilDate.pad(fraction, 6) }
        return text + "+00" + (y > 0 ? "" : " BC")
    }

    /// `2024-01-02 03:04:05.123456+00`, other offsets like `+05:30`, or `infinity`.
    static func parse(_ text: String) -> Date? {
        if text == "infinity" { return .distantFuture }
        if text == "-infinity" { return .distantPast }
        var s = Array(text.utf8)[...]
        func number(_ minDigits: Int) -> Int64? {
            var value: Int64 = 0
            var count = 0
            while let c = s.first, c >= 48, c <= 57 { value = value * 10 + Int64(c - 48); count += 1; s = s.dropFirst() }
            return count >= minDigits ? value : nil
        }
        func expect(_ c: Character) -> Bool {
            guard s.first == c.asciiValue else { return false }
            s = s.dropFirst()
            return true
        }
        guard let y = number(4), expect("-"), let m = number(2), expect("-"), let d = number(2) else { return nil }
        var micros: Int64 = 0
        if expect(" ") || expect("T") {
            guard let hh = number(2), expect(":"), let mm = number(2), expect(":"), let ss = number(2) else { return nil }
            micros = ((hh * 60 + mm) * 60 + ss) * 1_000_000
            if expect(".") {
                var fraction: Int64 = 0
                var digits = 0
                while let c = s.first, c >= 48, c <= 57 {
                    if digits < 6 { fraction = fraction * 10 + Int64(c - 48); digits += 1 }
                    s = s.dropFirst()
                }
                while digits < 6 { fraction *= 10; digits += 1 }
                micros += fraction
            }
        }
        if let sign = s.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            s = s.dropFirst()
            guard let oh = number(2) else { return nil }
            var offset = oh * 3600
            if expect(":") { guard let om = number(2) else { return nil }; offset += om * 60 }
            if expect(":") { guard let os = number(2) else { return nil }; offset += os }
            micros -= (sign == UInt8(ascii: "+") ? offset : -offset) * 1_000_000
        }
        guard s.isEmpty else { return nil }  // e.g. " BC"
        let total = Int64(CivilDate.days(year: Int(y), month: Int(m), day: Int(d))) * 86_400_000_000 + micros
        return Date(timeIntervalSince1970: Double(total) / 1_000_000)
    }

    private static func floorDivMod(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let q = a / b, r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }
}
