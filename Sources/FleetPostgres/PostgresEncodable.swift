public import Foundation

/// A Swift value that can be sent as a bind or a COPY field, in Postgres' text format.
public protocol PostgresEncodable: Sendable {
    static var postgresType: PostgresType { get }
    /// The text form Postgres accepts as input for `postgresType`; nil is SQL NULL.
    var postgresText: String? { get }
}

extension String: PostgresEncodable {
    public static var postgresType: PostgresType { .text }
    public var postgresText: String? { self }
}

extension Substring: PostgresEncodable {
    public static var postgresType: PostgresType { .text }
    public var postgresText: String? { String(self) }
}

extension Int: PostgresEncodable {
    public static var postgresType: PostgresType { .int8 }
    public var postgresText: String? { String(self) }
}

extension Int64: PostgresEncodable {
    public static var postgresType: PostgresType { .int8 }
    public var postgresText: String? { String(self) }
}

extension Int32: PostgresEncodable {
    public static var postgresType: PostgresType { .int4 }
    public var postgresText: String? { String(self) }
}

extension Int16: PostgresEncodable {
    public static var postgresType: PostgresType { .int2 }
    public var postgresText: String? { String(self) }
}

extension Bool: PostgresEncodable {
    public static var postgresType: PostgresType { .bool }
    public var postgresText: String? { self ? "t" : "f" }
}

extension Double: PostgresEncodable {
    public static var postgresType: PostgresType { .float8 }
    public var postgresText: String? {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        return description
    }
}

extension Date: PostgresEncodable {
    public static var postgresType: PostgresType { .timestamptz }
    public var postgresText: String? { PostgresTimestamp.format(self) }
}

extension Data: PostgresEncodable {
    public static var postgresType: PostgresType { .bytea }
    public var postgresText: String? { Hex.encode(self) }
}

/// Arrays encode as bytea (`[UInt8]`) or `text[]` (`[String]`), chosen by their element.
public protocol PostgresArrayElement: Sendable {
    static var postgresArrayType: PostgresType { get }
    static func postgresArrayText(_ elements: [Self]) -> String
    static func postgresArray(fromText text: String, type: PostgresType) throws -> [Self]
}

extension UInt8: PostgresArrayElement {
    public static var postgresArrayType: PostgresType { .bytea }
    public static func postgresArrayText(_ elements: [UInt8]) -> String { Hex.encode(elements) }
    public static func postgresArray(fromText text: String, type: PostgresType) throws -> [UInt8] {
        if type == .bytea {
            guard let bytes = Hex.decode(text) else { throw PostgresDecodingError.malformed }
            return bytes
        }
        return Array(text.utf8)
    }
}

extension String: PostgresArrayElement {
    public static var postgresArrayType: PostgresType { .textArray }
    public static func postgresArrayText(_ elements: [String]) -> String { TextArray.format(elements) }
    public static func postgresArray(fromText text: String, type: PostgresType) throws -> [String] {
        guard let parsed = TextArray.parse(text) else { throw PostgresDecodingError.malformed }
        return try parsed.map {
            guard let element = $0 else { throw PostgresDecodingError.unexpectedNull }
            return element
        }
    }
}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
    public static var postgresType: PostgresType { Element.postgresArrayType }
    public var postgresText: String? { Element.postgresArrayText(self) }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public static var postgresType: PostgresType { Wrapped.postgresType }
    public var postgresText: String? { self.flatMap { $0.postgresText } }
}

/// A `jsonb` value held as its JSON text.
public struct PostgresJSON: PostgresEncodable, Hashable {
    public var text: String
    public init(_ text: String) { self.text = text }
    public init(_ data: Data) { self.text = String(decoding: data, as: UTF8.self) }
    public init<T: Encodable>(encoding value: T, encoder: JSONEncoder = JSONEncoder()) throws {
        self.text = String(decoding: try encoder.encode(value), as: UTF8.self)
    }
    public var data: Data { Data(text.utf8) }
    public func decode<T: Decodable>(_ type: T.Type, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(type, from: data)
    }
    public static var postgresType: PostgresType { .jsonb }
    public var postgresText: String? { text }
}

enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(2 + bytes.count * 2)
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "x"))
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes bytea's `\x…` text output.
    static func decode(_ text: String) -> [UInt8]? {
        var utf8 = Substring(text).utf8
        guard utf8.starts(with: [UInt8(ascii: "\\"), UInt8(ascii: "x")]) else { return nil }
        utf8 = utf8.dropFirst(2)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var high: UInt8? = nil
        for c in utf8 {
            guard let v = nibble(c) else { return nil }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// One-dimensional `text[]` literals.
enum TextArray {
    /// `{"a","b \"c\""}`. Byte by byte: a quote or a backslash is never part of a multi-byte
    /// UTF-8 sequence.
    static func format(_ elements: [String]) -> String {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(elements.reduce(2) { $0 + $1.utf8.count + 3 })
        for (i, element) in elements.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            for byte in element.utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                out.append(byte)
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses array output like `{a,"b c",NULL}`; NULL elements become nil.
    static func parse(_ text: String) -> [String?]? {
        var scalars = Substring(text).unicodeScalars[...]
        if scalars.first == "[" {  // dimension decoration: [0:1]={...}
            guard let eq = scalars.firstIndex(of: "=") else { return nil }
            scalars = scalars[scalars.index(after: eq)...]
        }
        guard scalars.first == "{", scalars.last == "}" else { return nil }
        scalars = scalars.dropFirst().dropLast()
        var result: [String?] = []
        if scalars.isEmpty { return result }
        var i = scalars.startIndex
        while true {
            var element = String.UnicodeScalarView()
            var quoted = false
            if i < scalars.endIndex, scalars[i] == "\"" {
                quoted = true
                i = scalars.index(after: i)
                while i < scalars.endIndex, scalars[i] != "\"" {
                    if scalars[i] == "\\" { i = scalars.index(after: i); guard i < scalars.endIndex else { return nil } }
                    element.append(scalars[i])
                    i = scalars.index(after: i)
                }
                guard i < scalars.endIndex else { return nil }
                i = scalars.index(after: i)
            } else {
                while i < scalars.endIndex, scalars[i] != "," {
                    if scalars[i] == "{" { return nil }  // multi-dimensional: unsupported
                    element.append(scalars[i])
                    i = scalars.index(after: i)
                }
            }
            let value = String(element)
            result.append(!quoted && value == "NULL" ? nil : value)
            if i == scalars.endIndex { return result }
            guard scalars[i] == "," else { return nil }
            i = scalars.index(after: i)
        }
    }
}

