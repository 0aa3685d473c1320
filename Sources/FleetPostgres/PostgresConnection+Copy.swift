internal import CLibPQ
public import Foundation
import Synchronization

extension PostgresConnection {
    /// Runs `COPY … FROM STDIN` and streams what `body` writes. When `body` throws, the COPY is
    /// aborted (CopyFail) and the error rethrown. Returns the number of rows copied.
    @discardableResult
    public func copyFrom(
        isolation: isolated (any Actor)? = #isolation,
        _ statement: PostgresQuery,
        _ body: (PostgresCopyWriter) async throws -> Void
    ) async throws -> Int {
        let sql = statement.sql
        try await perform(cancellable: true, statement: sql) { pg in
            let res = PQexec(pg, sql)
            if PQresultStatus(res) == PGRES_COPY_IN {
                PQclear(res)
                return
            }
            _ = try self.checkResult(pg, res, statement: sql)
            throw PostgresError(code: .protocolViolation, message: "statement did not start COPY FROM STDIN", statement: sql)
        }
        let writer = PostgresCopyWriter(connection: self)
        do {
            try await body(writer)
            try await writer.flush()
        } catch {
            _ = try? await endCopy(failure: String(describing: error), statement: sql)
            throw error
        }
        return try await endCopy(failure: nil, statement: sql)
    }

    /// Runs `statement`, a `COPY … FROM STDIN (FORMAT binary)`, with `rows`. Returns the number of rows copied.
    @discardableResult
    public func copyBinary(isolation: isolated (any Actor)? = #isolation, _ statement: PostgresQuery,
                           rows: some Collection<PostgresBinaryRow>) async throws -> Int {
        try await copyFrom(statement) { writer in
            var chunk = Self.binaryHeader
            chunk.reserveCapacity(PostgresCopyWriter.chunkSize + 4096)
            for row in rows {
                chunk.append(contentsOf: row.bytes)
                if chunk.count >= PostgresCopyWriter.chunkSize {
                    try await writer.write(chunk)
                    chunk.removeAll(keepingCapacity: true)
                }
            }
            chunk.append(contentsOf: [0xFF, 0xFF])  // the trailer: a field count of -1
            try await writer.write(chunk)
        }
    }

    /// The signature, no flags, no header extension.
    private static let binaryHeader: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + [0, 0, 0, 0, 0, 0, 0, 0]

    func putCopyData(_ bytes: [UInt8], statement: String) async throws {
        try await perform(cancellable: false, statement: statement) { pg in
            let sent = bytes.withUnsafeBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                    PQputCopyData(pg, $0, Int32(buffer.count))
                }
            }
            if sent != 1 { throw Self.makeError(pg, nil, statement: statement, password: self.password) }
        }
    }

    private func endCopy(failure: String?, statement: String) async throws -> Int {
        try await perform(cancellable: false, statement: statement) { pg in
            if PQputCopyEnd(pg, failure) != 1 {
                let error = Self.makeError(pg, nil, statement: statement, password: self.password)
                Self.drainResults(pg)
                throw error
            }
            var outcome: Result<PostgresResult, any Error>? = nil
            while let res = PQgetResult(pg) {
                let result = Result { try self.checkResult(pg, res, statement: statement) }
                if outcome == nil || (try? outcome?.get()) != nil { outcome = result }
            }
            return try outcome?.get().affectedRows ?? 0
        }
    }
}

/// Buffers COPY text-format data and sends it in large chunks.
public final class PostgresCopyWriter: Sendable {
    private let connection: PostgresConnection
    private let buffer = Mutex([UInt8]())
    static let chunkSize = 256 * 1024

    init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// Raw COPY data, e.g. already formatted lines.
    nonisolated(nonsending) public func write(_ bytes: [UInt8]) async throws {
        try await append { $0.append(contentsOf: bytes) }
    }

    nonisolated(nonsending) public func write(_ data: Data) async throws {
        try await append { $0.append(contentsOf: data) }
    }

    nonisolated(nonsending) public func write(_ text: String) async throws {
        try await append { $0.append(contentsOf: text.utf8) }
    }

    /// One row in COPY's text format; nil values become NULL.
    nonisolated(nonsending) public func writeRow(_ values: [any PostgresEncodable]) async throws {
        try await append { Self.encodeRow(values, into: &$0) }
    }

    /// Appends one row in COPY's text format to `buffer`, for data formatted away from the
    /// connection (on the thread that produces it) and sent with `write(_:)`.
    public static func encodeRow(_ values: [any PostgresEncodable], into buffer: inout [UInt8]) {
        for (i, value) in values.enumerated() {
            if i > 0 { buffer.append(0x09) }
            if let text = value.postgresText {
                escape(text, into: &buffer)
            } else {
                buffer.append(contentsOf: [0x5C, 0x4E])  // \N
            }
        }
        buffer.append(0x0A)
    }

    nonisolated(nonsending) public func writeRow(_ values: any PostgresEncodable...) async throws {
        try await writeRow(values)
    }

    /// Also where a cancelled task stops the COPY: the error aborts it (CopyFail).
    nonisolated(nonsending) func flush() async throws {
        try Task.checkCancellation()
        let chunk = buffer.withLock { b in
            defer { b = [] }
            return b
        }
        if !chunk.isEmpty { try await connection.putCopyData(chunk, statement: "COPY") }
    }

    nonisolated(nonsending) private func append(_ body: (inout [UInt8]) -> Void) async throws {
        let full = buffer.withLock { b in
            body(&b)
            return b.count >= Self.chunkSize
        }
        if full { try await flush() }
    }

    /// COPY text format: backslash, tab, newline and carriage return are escaped; runs of other
    /// bytes are copied whole.
    private static func escape(_ text: String, into buffer: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            var start = 0
            for i in bytes.indices {
                let escaped: UInt8
                switch bytes[i] {
                case 0x5C: escaped = 0x5C
                case 0x09: escaped = UInt8(ascii: "t")
                case 0x0A: escaped = UInt8(ascii: "n")
                case 0x0D: escaped = UInt8(ascii: "r")
                default: continue
                }
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i]))
                buffer.append(0x5C)
                buffer.append(escaped)
                start = i + 1
            }
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
        }
    }
}
