/// SQL with its bind values. Interpolated values become `$n` binds; raw SQL must say `\(unescaped: …)`.
///
///     let q: PostgresQuery = "SELECT id FROM \(unescaped: table) WHERE path = \(path)"
public struct PostgresQuery: Sendable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    public var sql: String
    public var binds: PostgresBindings

    public init(unsafeSQL sql: String, binds: PostgresBindings = PostgresBindings()) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, binds: stringInterpolation.binds)
    }

    /// The SQL only; bound values are not shown.
    public var description: String { sql }

    public struct StringInterpolation: StringInterpolationProtocol, Sendable {
        public var sql: String
        public var binds: PostgresBindings

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql = ""
            sql.reserveCapacity(literalCapacity + 4 * interpolationCount)
            binds = PostgresBindings()
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value) {
            binds.append(value)
            sql += "$\(binds.count)"
        }

        /// nil becomes NULL.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            binds.append(value)
            sql += "$\(binds.count)"
        }

        public mutating func appendInterpolation(unescaped raw: String) {
            sql += raw
        }
    }
}

/// Bind values in text format with their type OIDs.
public struct PostgresBindings: Sendable, Hashable {
    public private(set) var types: [PostgresType] = []
    public private(set) var values: [String?] = []

    public init() {}

    public var count: Int { values.count }

    public mutating func append<Value: PostgresEncodable>(_ value: Value) {
        types.append(Value.postgresType)
        values.append(value.postgresText)
    }

    public mutating func appendNull(type: PostgresType = .unspecified) {
        types.append(type)
        values.append(nil)
    }
}

/// Quotes an identifier (schema, table) for use with `\(unescaped:)`.
public func quoteIdentifier(_ name: String) -> String {
    "\"" + name.replacingAll("\"", with: "\"\"") + "\""
}
