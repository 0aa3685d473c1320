internal import CLibPQ
import Dispatch
import Foundation
import Synchronization

/// One libpq connection. Every blocking `PQ*` call runs on the connection's own serial
/// DispatchQueue (its own thread while busy), never on the cooperative pool; callers await
/// through continuations. Use it from one task at a time.
public final class PostgresConnection: @unchecked Sendable {
    // What makes this Sendable: `pg` is touched only by blocks on `queue` (and by deinit, when
    // no block can be pending); `cancelHandle` only through PQcancel, which libpq allows from any
    // thread; everything mutable is in `state`, behind its Mutex.
    private let pg: OpaquePointer
    private let cancelHandle: OpaquePointer?
    private let queue: DispatchQueue
    /// Cancel requests in flight; the next statement waits for them so that a late cancel
    /// cannot hit it.
    private let cancels = DispatchGroup()
    private let state = Mutex(State())
    let password: String?
    /// The server process serving this connection.
    public let backendPID: Int32

    private struct State {
        var closed = false
        var finished = false
        var broken = false
    }

    private init(pg: OpaquePointer, queue: DispatchQueue, password: String?) {
        self.pg = pg
        self.queue = queue
        self.password = password
        self.cancelHandle = PQgetCancel(pg)
        self.backendPID = PQbackendPID(pg)
    }

    deinit {
        let finished = state.withLock { $0.finished }
        if !finished { PQfinish(pg) }
        if let cancelHandle { PQfreeCancel(cancelHandle) }
    }

    /// What the server shows as `application_name` for this process's sessions when the URL names
    /// none: "filefleet" until the process says which it is (`filefleet sync 4242`), so that an
    /// operator (or an audit) can tell whose session a row of `pg_stat_activity` is.
    public static var applicationName: String {
        get { applicationNameState.withLock { $0 } }
        set { applicationNameState.withLock { $0 = newValue } }
    }
    private static let applicationNameState = Mutex("filefleet")

    /// The password for connections whose URL has none (`--postgres-password-file`): given to
    /// libpq as a keyword, never put into a connection string, and scrubbed from every message.
    public static var defaultPassword: String? {
        get { defaultPasswordState.withLock { $0 } }
        set {
            defaultPasswordState.withLock { $0 = newValue }
            if let newValue { Redact.register(newValue) }
        }
    }
    private static let defaultPasswordState = Mutex<String?>(nil)

    /// Opens a connection from a libpq URI or `key=value` string. The session runs with
    /// TimeZone UTC and DateStyle ISO so that timestamps decode the same everywhere.
    public static func connect(_ url: String) async throws -> PostgresConnection {
        let password = try ConnInfo.password(in: url) ?? defaultPassword
        let queue = DispatchQueue(label: "filefleet.postgres.connection")
        let handle: Handle = try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try openBlocking(url, password: password) })
            }
        }
        return PostgresConnection(pg: handle.pointer, queue: queue, password: password)
    }

    private struct Handle: @unchecked Sendable {  // handed from the queue to the initializer once
        let pointer: OpaquePointer
    }

    private static func openBlocking(_ url: String, password: String?) throws -> Handle {
        // Earlier keywords are defaults; the expanded connection string (dbname) overrides them.
        // Keepalives and the user timeout let this side notice a server that vanished (a cut
        // link) within about 30 s instead of the system's two hours.
        let pairs = [("connect_timeout", "10"), ("fallback_application_name", applicationName),
                     ("client_encoding", "UTF8"), ("keepalives", "1"), ("keepalives_idle", "10"),
                     ("keepalives_interval", "5"), ("keepalives_count", "3"), ("tcp_user_timeout", "30000")]
            + (defaultPassword.map { [("password", $0)] } ?? []) + [("dbname", url)]
        let keys = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer { keys.forEach { free($0) }; values.forEach { free($0) } }
        let keyPointers = keys.map { UnsafePointer($0) } + [nil]
        let valuePointers = values.map { UnsafePointer($0) } + [nil]
        guard let pg = PQconnectdbParams(keyPointers, valuePointers, 1) else {
            throw PostgresError(code: .sqlclientUnableToEstablishSqlconnection, message: "out of memory opening a connection")
        }
        guard PQstatus(pg) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(pg))
            PQfinish(pg)
            throw PostgresError.connectFailure(message, password: password)
        }
        PQsetNoticeProcessor(pg, { _, _ in }, nil)
        let res = PQexec(pg, sessionSetup)
        defer { PQclear(res) }
        if PQresultStatus(res) != PGRES_TUPLES_OK {
            let error = makeError(pg, res, statement: nil, password: password)
            PQfinish(pg)
            throw error
        }
        return Handle(pointer: pg)
    }

    /// What every session starts with: the formats FileFleet decodes, and bounds on what a peer
    /// that vanished can hold. The server drops a session whose client went silent (keepalives,
    /// user timeout: about 25–30 s) or that sat in a transaction for a minute, so its row locks
    /// do not outlive it. A bound still at the server's default (none, or the system's keepalive
    /// timing) gets FileFleet's; one the user set (URL `options`, `PGOPTIONS`, the role, the
    /// server's configuration) is kept.
    static let sessionSetup = """
        SET TimeZone TO 'UTC'; SET DateStyle TO 'ISO, MDY'; SET IntervalStyle TO 'postgres';
        SELECT set_config(name, bound.value, false)
          FROM (VALUES ('idle_in_transaction_session_timeout', '60s'), ('tcp_keepalives_idle', '10'),
                       ('tcp_keepalives_interval', '5'), ('tcp_keepalives_count', '3'),
                       ('tcp_user_timeout', '30000')) AS bound(name, value)
          JOIN pg_settings USING (name)
         WHERE source = 'default'
        """

    /// True once the connection is closed or libpq has seen it fail; a pool replaces it.
    public var isBroken: Bool { state.withLock { $0.broken || $0.closed } }

    /// Runs a statement and returns its rows.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresResult {
        try await perform(cancellable: true, statement: query.sql) { pg in
            try self.execParams(pg, query)
        }
    }

    /// Runs a statement and returns the number of rows it affected.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await self.query(query).affectedRows
    }

    /// Runs SQL through the simple protocol: several statements allowed, no binds.
    @discardableResult
    public func executeScript(_ sql: String) async throws -> PostgresResult {
        try await perform(cancellable: true, statement: sql) { pg in
            try self.checkResult(pg, PQexec(pg, sql), statement: sql)
        }
    }

    /// Commits when `body` returns, rolls back when it throws.
    public func withTransaction<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await execute("BEGIN")
        let value: T
        do {
            value = try await body(self)
        } catch {
            await rollback()
            throw error
        }
        let commit = try await perform(cancellable: false, statement: "COMMIT") { pg in
            try self.execParams(pg, "COMMIT")
        }
        if commit.commandTag == "ROLLBACK" {
            throw PostgresError(code: .inFailedSqlTransaction,
                                message: "transaction was rolled back at COMMIT: a statement in it had failed",
                                statement: "COMMIT")
        }
        return value
    }

    /// Rolls back even when the task is cancelled; a broken connection is left to the pool.
    func rollback() async {
        _ = try? await perform(cancellable: false, statement: "ROLLBACK") { pg in
            try self.execParams(pg, "ROLLBACK")
        }
    }

    /// Closes the connection; later statements fail with 08003.
    public func close() async {
        let first = state.withLock { s in
            defer { s.closed = true }
            return !s.closed
        }
        guard first else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                let finish = self.state.withLock { s in
                    defer { s.finished = true }
                    return !s.finished
                }
                if finish { PQfinish(self.pg) }
                continuation.resume()
            }
        }
    }

    /// Whether the connection still looks alive without a round trip: reads whatever the server
    /// sent while idle (a shutdown notice, end of stream) and reports whether libpq is still happy.
    public func isAlive() async -> Bool {
        if isBroken { return false }
        return (try? await onQueue { pg in
            for _ in 0..<4 {
                var fd = pollfd(fd: PQsocket(pg), events: Int16(POLLIN), revents: 0)
                guard poll(&fd, 1, 0) > 0 else { break }
                if PQconsumeInput(pg) == 0 { break }
                while let note = PQnotifies(pg) { PQfreemem(note) }
            }
            let ok = PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) == PQTRANS_IDLE
            if !ok { self.state.withLock { $0.broken = true } }
            return ok
        }) ?? false
    }

    // MARK: - Running work on the connection's queue

    func onQueue<T: Sendable>(_ body: @escaping @Sendable (OpaquePointer) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result {
                    if self.state.withLock({ $0.finished }) {
                        throw PostgresError(code: .connectionDoesNotExist, message: "connection is closed")
                    }
                    return try body(self.pg)
                })
            }
        }
    }

    /// Runs `body` on the queue; when `cancellable`, task cancellation sends PQcancel while it
    /// runs and the statement then fails with `CancellationError`.
    func perform<T: Sendable>(
        cancellable: Bool, statement: String,
        _ body: @escaping @Sendable (OpaquePointer) throws -> T
    ) async throws -> T {
        if state.withLock({ $0.closed }) {
            throw PostgresError(code: .connectionDoesNotExist, message: "connection is closed", statement: statement)
        }
        guard cancellable else {
            return try await onQueue { pg in
                self.cancels.wait()
                return try body(pg)
            }
        }
        let token = CancelToken()
        return try await withTaskCancellationHandler {
            try await onQueue { pg in
                self.cancels.wait()
                guard token.start() else { throw CancellationError() }
                do {
                    let value = try body(pg)
                    _ = token.finish()
                    return value
                } catch let error as PostgresError {
                    if token.finish() && error.code == .queryCanceled { throw CancellationError() }
                    throw error
                }
            }
        } onCancel: {
            if token.cancel() { self.sendCancel() }
        }
    }

    private func sendCancel() {
        guard let cancelHandle = cancelHandle.map(Handle.init) else { return }
        cancels.enter()
        // PQcancel opens a connection and waits for the server: not on the cooperative pool.
        DispatchQueue.global().async {
            var buffer = [CChar](repeating: 0, count: 256)
            _ = PQcancel(cancelHandle.pointer, &buffer, Int32(buffer.count))
            self.cancels.leave()
        }
    }

    // MARK: - Blocking libpq calls (queue only)

    func execParams(_ pg: OpaquePointer, _ query: PostgresQuery) throws -> PostgresResult {
        let count = query.binds.count
        if count == 0 {
            return try checkResult(pg, PQexecParams(pg, query.sql, 0, nil, nil, nil, nil, 0), statement: query.sql)
        }
        let types = query.binds.types.map { Oid($0.rawValue) }
        let values: [UnsafeMutablePointer<CChar>?] = query.binds.values.map { $0.map { strdup($0) } }
        defer { values.forEach { free($0) } }
        let pointers = values.map { $0.map { UnsafePointer($0) } }
        let res = PQexecParams(pg, query.sql, Int32(count), types, pointers, nil, nil, 0)
        return try checkResult(pg, res, statement: query.sql)
    }

    /// Copies a result out of libpq, clears it, and throws its error if it has one.
    func checkResult(_ pg: OpaquePointer, _ res: OpaquePointer?, statement: String) throws -> PostgresResult {
        defer {
            PQclear(res)
            if PQstatus(pg) != CONNECTION_OK { state.withLock { $0.broken = true } }
        }
        switch PQresultStatus(res) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return Self.copyResult(res!)
        case PGRES_COPY_IN:
            _ = PQputCopyEnd(pg, "COPY FROM STDIN is only supported through copyFrom")
            Self.drainResults(pg)
            throw PostgresError(code: .protocolViolation, message: "use copyFrom for COPY FROM STDIN", statement: statement)
        case PGRES_COPY_OUT:
            var buffer: UnsafeMutablePointer<CChar>? = nil
            while PQgetCopyData(pg, &buffer, 0) > 0 { PQfreemem(buffer) }
            Self.drainResults(pg)
            throw PostgresError(code: .protocolViolation, message: "COPY TO STDOUT is not supported", statement: statement)
        default:
            throw Self.makeError(pg, res, statement: statement, password: password)
        }
    }

    static func drainResults(_ pg: OpaquePointer) {
        while let res = PQgetResult(pg) { PQclear(res) }
    }

    static func copyResult(_ res: OpaquePointer) -> PostgresResult {
        let fields = PQnfields(res)
        let tuples = PQntuples(res)
        let names = (0..<fields).map { String(cString: PQfname(res, $0)) }
        let types = (0..<fields).map { PostgresType(rawValue: PQftype(res, $0)) }
        let columns = PostgresColumns(names: names, types: types)
        var rows = [PostgresRow]()
        rows.reserveCapacity(Int(tuples))
        for r in 0..<tuples {
            var values = [String?]()
            values.reserveCapacity(Int(fields))
            for c in 0..<fields {
                if PQgetisnull(res, r, c) == 1 {
                    values.append(nil)
                } else {
                    let length = Int(PQgetlength(res, r, c))
                    let bytes = UnsafeRawPointer(PQgetvalue(res, r, c)!).assumingMemoryBound(to: UInt8.self)
                    values.append(String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self))
                }
            }
            rows.append(PostgresRow(columns: columns, values: values))
        }
        let tag = String(cString: PQcmdStatus(res))
        let affected = Int(String(cString: PQcmdTuples(res))) ?? 0
        return PostgresResult(rows: rows, affectedRows: affected, commandTag: tag, columns: columns)
    }

    static func makeError(_ pg: OpaquePointer, _ res: OpaquePointer?, statement: String?, password: String?) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let res, let value = PQresultErrorField(res, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        let fallback = res.flatMap { PQresultErrorMessage($0) }.map { String(cString: $0) }
        var message = field("M") ?? fallback ?? ""
        if message.isEmpty { message = String(cString: PQerrorMessage(pg)) }
        message = Redact.scrub(message.trimmingTrailingNewlines, password: password)
        let code: PostgresError.Code
        if let state = field("C") {
            code = PostgresError.Code(rawValue: state)
        } else if PQstatus(pg) != CONNECTION_OK || Self.looksLikeLostConnection(message) {
            code = .connectionFailure
        } else {
            code = .internalError
        }
        return PostgresError(code: code, message: message, detail: field("D"), hint: field("H"), statement: statement)
    }

    private static func looksLikeLostConnection(_ message: String) -> Bool {
        let text = message.lowercased()
        return ["server closed the connection", "could not send data", "could not receive data",
                "no connection to the server", "connection not open", "ssl syscall", "terminating connection"]
            .contains { text.contains($0) }
    }
}

/// Where a cancellable statement is, so a cancel is sent only while it runs on the server.
final class CancelToken: Sendable {
    private enum Phase { case pending, running, cancelSent, skipped, done }
    private let phase = Mutex(Phase.pending)

    /// Called on the queue before the statement; false when it was cancelled first.
    func start() -> Bool {
        phase.withLock { p in
            guard p == .pending else { return false }
            p = .running
            return true
        }
    }

    /// Returns whether a cancel must be sent now.
    func cancel() -> Bool {
        phase.withLock { p in
            switch p {
            case .pending: p = .skipped; return false
            case .running: p = .cancelSent; return true
            default: return false
            }
        }
    }

    /// Returns whether a cancel was sent while the statement ran.
    func finish() -> Bool {
        phase.withLock { p in
            defer { p = .done }
            return p == .cancelSent
        }
    }
}

enum ConnInfo {
    /// The password in a connection string, to scrub it from messages.
    static func password(in url: String) throws -> String? {
        var error: UnsafeMutablePointer<CChar>? = nil
        guard let options = PQconninfoParse(url, &error) else {
            let message = error.map { String(cString: $0) } ?? "invalid connection string"
            if let error { PQfreemem(error) }
            throw PostgresError(code: .invalidParameterValue,
                                message: Redact.scrub(message.trimmingTrailingNewlines, password: nil))
        }
        defer { PQconninfoFree(options) }
        var option = options
        while let keyword = option.pointee.keyword {
            if String(cString: keyword) == "password", let value = option.pointee.val {
                return String(cString: value)
            }
            option += 1
        }
        return nil
    }
}

extension PostgresConnection {
    /// Connects, runs `body`, and closes the connection on every exit path: for one-off work
    /// outside a pool (operator commands, tests).
    public static func withConnection<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ url: String, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await connect(url)
        do {
            let value = try await body(connection)
            await connection.close()
            return value
        } catch {
            await connection.close()
            throw error
        }
    }
}
