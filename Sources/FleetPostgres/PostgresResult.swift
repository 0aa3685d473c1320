/// Rows of a finished statement, copied out of libpq.
public struct PostgresResult: Sendable, RandomAccessCollection {
    public let rows: [PostgresRow]
    /// Rows inserted, updated, deleted, copied or selected, per the command tag.
    public let affectedRows: Int
    public let commandTag: String
    let columns: PostgresColumns

    public var columnNames: [String] { columns.names }
    public var startIndex: Int { rows.startIndex }
    public var endIndex: Int { rows.endIndex }
    public subscript(position: Int) -> PostgresRow { rows[position] }
}

final class PostgresColumns: Sendable {
    let names: [String]
    let types: [PostgresType]
    let indexByName: [String: Int]

    init(names: [String], types: [PostgresType]) {
        self.names = names
        self.types = types
        var index = [String: Int]()
        for (i, name) in names.enumerated() where index[name] == nil { index[name] = i }
        self.indexByName = index
    }
}

public struct PostgresRow: Sendable {
    let columns: PostgresColumns
    let values: [String?]

    public var count: Int { values.count }

    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, _ index: Int) throws -> T {
        guard values.indices.contains(index) else {
            throw PostgresDecodingError(kind: .missingColumn, column: "#\(index)", swiftType: "\(T.self)")
        }
        return try decode(T.self, at: index, label: "\(index) (\(columns.names[index]))")
    }

    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, _ column: String) throws -> T {
        guard let index = columns.indexByName[column] else {
            throw PostgresDecodingError(kind: .missingColumn, column: column, swiftType: "\(T.self)")
        }
        return try decode(T.self, at: index, label: column)
    }

    /// True when the column holds SQL NULL.
    public func isNull(_ index: Int) -> Bool { values[index] == nil }

    private func decode<T: PostgresDecodable>(_: T.Type, at index: Int, label: String) throws -> T {
        do {
            guard let text = values[index] else { return try T.postgresNull() }
            return try T(postgresText: text, type: columns.types[index])
        } catch var error as PostgresDecodingError {
            error.column = label
            error.postgresType = columns.types[index]
            error.swiftType = "\(T.self)"
            throw error
        }
    }
}
