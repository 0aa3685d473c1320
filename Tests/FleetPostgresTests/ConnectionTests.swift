import FleetPostgres
import Foundation
import Synchronization
import TestSupport
import Testing

/// A connection to a fresh schema of the shared test cluster.
func schemaConnection() async throws -> (PostgresConnection, TestSchema) {
    let env = try await TestEnvironment.shared()
    let schema = try await env.makeSchema()
    return (try await PostgresConnection.connect(schema.url), schema)
}

@Test func selectOneThroughLibpq() async throws {
    let env = try await TestEnvironment.shared()
    let conn = try await PostgresConnection.connect(env.postgresURL)
    let rows = try await conn.query("SELECT 1 AS one")
    #expect(try rows.first?.decode(Int.self, "one") == 1)
    #expect(LibPQ.version >= 140000)
    await conn.close()
    #expect(conn.isBroken)
}

struct Payload: Codable, Equatable { var name: String; var tags: [String] }

@Test func bindsRoundTripEveryType() async throws {
    let (conn, _) = try await schemaConnection()
    defer { Task { await conn.close() } }
    try await conn.executeScript("""
        CREATE TABLE t (s text, big text, i bigint, i4 int, b bool, d double precision, ts timestamptz,
                        bin bytea, arr text[], j jsonb, n bigint, ns text)
        """)
    let unicode = "naïve café — 日本語 🚀 \"quotes\" 'single' back\\slash tab\tnewline\n"
    let big = String(repeating: "ab€🚀", count: 300_000)  // ~3 MB
    let ts = Date(timeIntervalSince1970: 1_700_000_000.123456)
    let bytes = Data((0...255).map { UInt8($0) } + [0, 0, 92, 120])
    let array = ["plain", "with space", "comma,inside", "quote\"inside", "back\\slash", "", "NULL", "{braces}", "ünï"]
    let json = try PostgresJSON(encoding: Payload(name: "ü \"x\"", tags: ["a", "b"]))
    let missing: Int64? = nil
    let missingText: String? = nil
    let inserted = try await conn.execute("""
        INSERT INTO t VALUES (\(unicode), \(big), \(Int64.max), \(Int32.min), \(true), \(-1.5e-300), \(ts),
                              \(bytes), \(array), \(json), \(missing), \(missingText))
        """)
    #expect(inserted == 1)
    let row = try #require(try await conn.query("SELECT * FROM t").first)
    #expect(try row.decode(String.self, "s") == unicode)
    #expect(try row.decode(String.self, 1) == big)
    #expect(try row.decode(Int64.self, "i") == .max)
    #expect(try row.decode(Int.self, "i") == .max)
    #expect(try row.decode(Int32.self, "i4") == .min)
    #expect(try row.decode(Bool.self, "b") == true)
    #expect(try row.decode(Double.self, "d") == -1.5e-300)
    #expect(abs(try row.decode(Date.self, "ts").timeIntervalSince(ts)) < 1e-6)
    #expect(try row.decode(Data.self, "bin") == bytes)
    #expect(try row.decode([UInt8].self, "bin") == Array(bytes))
    #expect(try row.decode([String].self, "arr") == array)
    #expect(try row.decode(PostgresJSON.self, "j").decode(Payload.self) == Payload(name: "ü \"x\"", tags: ["a", "b"]))
    #expect(try JSONDecoder().decode(Payload.self, from: row.decode(Data.self, "j")).tags == ["a", "b"])
    #expect(try row.decode(String.self, "j").contains("\"tags\""))
    #expect(try row.decode(Int64?.self, "n") == nil)
    #expect(try row.decode(String?.self, "ns") == nil)
    #expect(try row.decode(String?.self, "s") == unicode)
    #expect(throws: PostgresDecodingError.self) { try row.decode(Int64.self, "n") }
    #expect(throws: PostgresDecodingError.self) { try row.decode(Int.self, "nope") }
    #expect(throws: PostgresDecodingError.self) { try row.decode(Int.self, "s") }

    // Values are binds, never SQL: an injection attempt is just a string.
    let evil = "x'); DROP TABLE t; --"
    let echoed = try await conn.query("SELECT \(evil)::text AS v, \(Double.infinity) AS inf, \(Date.distantFuture) AS far")
    #expect(try echoed[0].decode(String.self, "v") == evil)
    #expect(try echoed[0].decode(Double.self, "inf") == .infinity)
    #expect(try echoed[0].decode(Date.self, "far") == .distantFuture)
    #expect(try await conn.query("SELECT count(*) FROM t")[0].decode(Int.self, 0) == 1)

    // Timestamps decode the same whatever the server's zone, and before 1970 too.
    let old = Date(timeIntervalSince1970: -2_208_988_800.5)  // 1899-12-31 23:59:59.5 UTC
    let back = try await conn.query("SELECT \(old) + interval '0' AS v, now() AS n")
    #expect(try back[0].decode(Date.self, "v") == old)
    #expect(abs(try back[0].decode(Date.self, "n").timeIntervalSinceNow) < 60)
}

@Test func transactionCommitsOnReturnAndRollsBackOnThrow() async throws {
    let (conn, _) = try await schemaConnection()
    defer { Task { await conn.close() } }
    try await conn.execute("CREATE TABLE t (v int)")
    struct Boom: Error {}
    await #expect(throws: Boom.self) {
        try await conn.withTransaction { tx in
            try await tx.execute("INSERT INTO t VALUES (1)")
            throw Boom()
        }
    }
    let kept = try await conn.withTransaction { tx in
        try await tx.execute("INSERT INTO t VALUES (2)")
    }
    #expect(kept == 1)
    // A failed statement swallowed inside the transaction must not look like a commit.
    await #expect(throws: PostgresError.self) {
        try await conn.withTransaction { tx in
            try await tx.execute("INSERT INTO t VALUES (3)")
            _ = try? await tx.execute("SELECT 1/0")
        }
    }
    let values = try await conn.query("SELECT v FROM t ORDER BY v").map { try $0.decode(Int.self, 0) }
    #expect(values == [2])
    let error = await #expect(throws: PostgresError.self) { try await conn.execute("SELEC 1") }
    #expect(error?.code == .syntaxError)
    #expect(error?.statement == "SELEC 1")
    #expect(error?.isRetryable == false)
}

@Test func copyHundredThousandRows() async throws {
    let (conn, _) = try await schemaConnection()
    defer { Task { await conn.close() } }
    try await conn.execute("CREATE TABLE t (id bigint, path text, note text, tags text[])")
    let copied = try await conn.copyFrom("COPY t (id, path, note, tags) FROM STDIN") { writer in
        for i in 0..<100_000 {
            let note: String? = i % 10 == 0 ? nil : "tab\there\nnewline back\\slash ü \(i)"
            try await writer.writeRow(Int64(i), "dir/file-\(i).md", note, ["a", "b c"])
        }
    }
    #expect(copied == 100_000)
    let stats = try await conn.query("SELECT count(*), sum(id), count(note), max(note), min(tags[2]) FROM t")[0]
    #expect(try stats.decode(Int.self, 0) == 100_000)
    #expect(try stats.decode(Int.self, 1) == 4_999_950_000)
    #expect(try stats.decode(Int.self, 2) == 90_000)
    #expect(try stats.decode(String.self, 3).hasPrefix("tab\there\nnewline back\\slash ü "))
    #expect(try stats.decode(String.self, 4) == "b c")

    // A throwing closure aborts the COPY (CopyFail) and the connection stays usable.
    struct Stop: Error {}
    await #expect(throws: Stop.self) {
        try await conn.copyFrom("COPY t (id) FROM STDIN") { writer in
            for i in 0..<1000 { try await writer.writeRow(Int64(i)) }
            throw Stop()
        }
    }
    #expect(try await conn.query("SELECT count(*) FROM t")[0].decode(Int.self, 0) == 100_000)
    // Bad data is a server error, not a hang.
    await #expect(throws: PostgresError.self) {
        try await conn.copyFrom("COPY t (id) FROM STDIN") { try await $0.write("not a number\n") }
    }
    #expect(!conn.isBroken)
}

/// COPY's text escaping and the text[] binds, byte for byte: every special character at the
/// start, the middle and the end of a value, next to multi-byte UTF-8.
@Test func copyAndArrayBindsKeepEveryByte() async throws {
    let (conn, _) = try await schemaConnection()
    defer { Task { await conn.close() } }
    let values = ["", "\\", "\t", "\n", "\r", "\r\n", "a\\b\tc\nd\re", "\\N", "trailing\\", "\ttab-first",
                  "ü\\日本\t🚀\n", "quote\"s", "{brace,comma}", "NULL", String(repeating: "x\n", count: 5000)]
    try await conn.execute("CREATE TABLE t (i int, v text)")
    try await conn.copyFrom("COPY t (i, v) FROM STDIN") { writer in
        for (i, v) in values.enumerated() { try await writer.writeRow(Int64(i), v) }
    }
    let copied = try await conn.query("SELECT v FROM t ORDER BY i").map { try $0.decode(String.self, 0) }
    #expect(copied == values)
    let echoed = try await conn.query("SELECT unnest(\(values)::text[])").map { try $0.decode(String.self, 0) }
    #expect(echoed == values)
}

@Test func taskCancellationCancelsLongSleep() async throws {
    let env = try await TestEnvironment.shared()
    let conn = try await PostgresConnection.connect(env.postgresURL)
    defer { Task { await conn.close() } }
    let started = ContinuousClock.now
    let sleeper = Task { try await conn.query("SELECT pg_sleep(30)") }
    try await Task.sleep(for: .milliseconds(300))
    sleeper.cancel()
    await #expect(throws: CancellationError.self) { try await sleeper.value }
    #expect(ContinuousClock.now - started < .seconds(10))
    #expect(!conn.isBroken)
    #expect(try await conn.query("SELECT 42")[0].decode(Int.self, 0) == 42)
    // A statement whose task is already cancelled never starts.
    let early = Task {
        withUnsafeCurrentTask { $0?.cancel() }
        return try await conn.query("SELECT 1")
    }
    await #expect(throws: CancellationError.self) { try await early.value }
    #expect(try await conn.query("SELECT 7")[0].decode(Int.self, 0) == 7)
}

@Test func connectErrorsCarrySQLStateAndHidePassword() async throws {
    let error = await #expect(throws: PostgresError.self) {
        try await PostgresConnection.connect("postgresql://postgres:s3cretPW@127.0.0.1:1/postgres?connect_timeout=3")
    }
    #expect(error?.code == .sqlclientUnableToEstablishSqlconnection)
    #expect(error?.isRetryable == true)
    #expect(error.map { !"\($0)".contains("s3cretPW") } == true)
    let bad = await #expect(throws: PostgresError.self) {
        try await PostgresConnection.connect("postgresql://postgres:s3cretPW@127.0.0.1:notaport/postgres")
    }
    #expect(bad?.isRetryable == false)
    #expect(bad.map { !"\($0)".contains("s3cretPW") } == true)
}

@Test func sessionsBoundWhatAVanishedPeerCanHold() async throws {
    let env = try await TestEnvironment.shared()
    let conn = try await PostgresConnection.connect(env.postgresURL)
    defer { Task { await conn.close() } }
    let bounds = try await conn.query("""
        SELECT current_setting('idle_in_transaction_session_timeout'), current_setting('tcp_keepalives_idle'),
               current_setting('tcp_keepalives_count'), current_setting('tcp_user_timeout')
        """)[0]
    #expect(try bounds.decode(String.self, 0) == "1min")
    #expect(try bounds.decode(String.self, 1) == "10")
    #expect(try bounds.decode(String.self, 2) == "3")
    #expect(try bounds.decode(String.self, 3) == "30000")  // milliseconds

    // A bound the user gives wins, and it does what it says: a session that sits in a transaction
    // past it is ended by the server and its row lock goes with it.
    let separator = env.postgresURL.contains("?") ? "&" : "?"
    let short = env.postgresURL + separator + "options=-c%20idle_in_transaction_session_timeout%3D1s"
    let holder = try await PostgresConnection.connect(short)
    defer { Task { await holder.close() } }
    #expect(try await holder.query("SHOW idle_in_transaction_session_timeout")[0].decode(String.self, 0) == "1s")
    let table = "lock_probe_\(UInt32.random(in: 0...UInt32.max))"
    try await conn.execute("CREATE TABLE \(unescaped: table) (id int PRIMARY KEY)")
    defer { Task { try? await conn.execute("DROP TABLE IF EXISTS \(unescaped: table)") } }
    try await conn.execute("INSERT INTO \(unescaped: table) VALUES (1)")
    try await conn.execute("SET lock_timeout = '20s'")
    // The server's idle clock starts after it has run the holder's UPDATE, so after `sent`: the
    // waiting UPDATE cannot finish less than 1 s after `sent`, however late this task is scheduled.
    // BEGIN and UPDATE go in one round trip: between two, a late-scheduled task (another suite
    // saturates every core) let the server end the idle holder before its UPDATE (CI saw 08006).
    let sent = ContinuousClock.now
    _ = try await holder.executeScript("BEGIN; UPDATE \(table) SET id = 1 WHERE id = 1")
    try await conn.execute("UPDATE \(unescaped: table) SET id = 1 WHERE id = 1")  // waits for the holder to be dropped
    #expect(ContinuousClock.now - sent >= .seconds(1))
    #expect(ContinuousClock.now - sent < .seconds(15))
    await #expect(throws: PostgresError.self) { try await holder.query("SELECT 1") }
}

/// A Mutex that closures can capture.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

/// COPY's binary format, value for value: text with every special byte, NULLs, bigints at their
/// limits, jsonb, and instants before 1970, before 2000, in year 1 and beyond 9999, each the instant
/// the text format gives; an instant PostgreSQL cannot hold is refused (22008), never ±infinity.
@Test func binaryCopyKeepsEveryValue() async throws {
    let (conn, _) = try await schemaConnection()
    defer { Task { await conn.close() } }
    let texts: [String?] = ["", "\\", "\t", "\n", "\r\n", "\\N", "ü\\日本\t🚀\n", "NULL", nil, String(repeating: "x\n", count: 5000)]
    var micros: [Int64] = [0, -1, 1, 1_600_000_000_250_000, -2_208_988_800_000_001, 946_684_800_000_000, 946_684_799_999_999,
                           -62_135_596_800_000_000, 253_402_300_800_000_000, 9_000_000_000_000_000_000]
    for _ in 0..<50 { micros.append(Int64.random(in: -210_000_000_000_000_000...9_000_000_000_000_000_000)) }
    let jsons: [String?] = [#"{"a": [1, "x\ty"], "b": null}"#, "[]", nil, #""ü""#]
    try await conn.execute("CREATE TABLE b (i bigint, id bigint, v text, at timestamptz, j jsonb)")
    try await conn.execute("CREATE TABLE t (i bigint, at timestamptz)")
    // A field of the wrong binary form (text into bigint) is the server's error; the connection goes on.
    var wrong = PostgresBinaryRow(fields: 1)
    wrong.text("abc")
    await #expect(throws: PostgresError.self) { try await conn.copyBinary("COPY b (i) FROM STDIN (FORMAT binary)", rows: [wrong, wrong]) }
    #expect(!conn.isBroken)
    let rows = micros.enumerated().map { i, at in
        var row = PostgresBinaryRow(fields: 5)
        row.bigint(Int64(i))
        row.bigint([Int64.min, Int64.max, 0, -1][i % 4])
        row.text(texts[i % texts.count])
        row.timestamptz(micros: at)
        row.jsonb(jsons[i % jsons.count])
        return row
    }
    #expect(try await conn.copyBinary("COPY b (i, id, v, at, j) FROM STDIN (FORMAT binary)", rows: rows) == micros.count)
    try await conn.copyFrom("COPY t (i, at) FROM STDIN") { writer in
        for (i, at) in micros.enumerated() { try await writer.writeRow(Int64(i), PostgresTimestamp.format(micros: at)) }
    }
    let back = try await conn.query("""
        SELECT b.id, b.v, (extract(epoch FROM b.at) * 1000000)::bigint, b.j::text, b.at = t.at
          FROM b JOIN t USING (i) ORDER BY b.i
        """)
    #expect(back.count == micros.count)
    for (i, row) in back.enumerated() {
        #expect(try row.decode(Int64.self, 0) == [Int64.min, Int64.max, 0, -1][i % 4])
        #expect(try row.decode(String?.self, 1) == texts[i % texts.count])
        #expect(try row.decode(Int64.self, 2) == micros[i], "row \(i): \(micros[i])")
        #expect(try row.decode(Bool.self, 4), "row \(i): binary and text give different instants")
    }
    let json = try await conn.query("SELECT j::text FROM b WHERE i < 4 ORDER BY i").map { try $0.decode(String?.self, 0) }
    #expect(json == [#"{"a": [1, "x\ty"], "b": null}"#, "[]", nil, #""ü""#])
    for outside in [Int64.min, Int64.min + 946_684_800_000_000, -211_900_000_000_000_000] {
        var row = PostgresBinaryRow(fields: 5)
        row.bigint(-1)
        row.bigint(0)
        row.null()
        row.timestamptz(micros: outside)
        row.null()
        await #expect(performing: { try await conn.copyBinary("COPY b (i, id, v, at, j) FROM STDIN (FORMAT binary)", rows: [row]) },
                      throws: { ($0 as? PostgresError)?.code.rawValue == "22008" })
    }
    #expect(try await conn.query("SELECT count(*) FROM b WHERE NOT isfinite(at)")[0].decode(Int.self, 0) == 0)
}
