@testable import FileFleet
import FleetCrypto
import FleetKafka
import FleetPostgres
import Foundation
import Glibc
import TestSupport

/// A temporary directory `<base>` with the source root `<base>/root` and, beside it,
/// `<base>/outside/secret.txt`: bytes no row may ever contain.
final class HostileBase: Sendable {
    let base: String
    let root: String
    let secret: String

    init(_ label: String) throws {
        base = NSTemporaryDirectory() + "filefleet-\(label)-" + UUID().uuidString
        root = base + "/root"
        secret = "TOP-SECRET-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/outside", withIntermediateDirectories: true)
        try Data(secret.utf8).write(to: URL(fileURLWithPath: secretPath))
    }

    deinit { try? FileManager.default.removeItem(atPath: base) }

    var secretPath: String { base + "/outside/secret.txt" }

    func write(_ relative: String, _ bytes: [UInt8]) throws {
        let path = root + "/" + relative
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    func write(_ relative: String, _ text: String) throws { try write(relative, Array(text.utf8)) }

    func link(_ relative: String, _ target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: root + "/" + relative, withDestinationPath: target)
    }

    /// A file whose name is `name` byte for byte (not valid UTF-8, say).
    func rawFile(_ name: [UInt8], _ contents: String) throws { try Self.rawFile(in: root, name, contents) }

    /// A file under `root` whose name is `name` byte for byte.
    static func rawFile(in root: String, _ name: [UInt8], _ contents: String) throws {
        let path = Array(root.utf8) + [UInt8(ascii: "/")] + name + [0]
        let fd = path.withUnsafeBufferPointer {
            $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY | O_TRUNC, 0o644) }
        }
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        _ = Array(contents.utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    func remove(_ relative: String) throws { try FileManager.default.removeItem(atPath: root + "/" + relative) }

    /// The bytes a worker would import for `relative` (symlinks inside the root followed).
    func bytes(_ relative: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/" + relative)))
    }
}

/// The shared test servers, a schema of this test's own, and fresh topics and groups per fleet.
struct HostileFleet: Sendable {
    let environment: TestEnvironment
    let schema: Schema

    init() async throws {
        environment = try await TestEnvironment.shared()
        schema = Schema(try await environment.makeSchema().name)
    }

    func settings() -> FleetSettings { environment.fleetSettings(schema: schema) }

    func sync(_ root: String, sourceID: String, maxFileBytes: Int = 1 << 20, maxAttempts: Int = 3,
              allowMassDelete: Bool = false) async throws -> SyncSummary {
        var options = SyncOptions()
        options.allowMassDelete = allowMassDelete
        options.sourceID = sourceID
        options.workers = 2
        options.maxFileBytes = maxFileBytes
        options.maxAttempts = maxAttempts
        options.pollInterval = .milliseconds(200)
        return try await Coordinator(settings: settings()).sync(root, options: options)
    }

    func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await PostgresConnection.withConnection(environment.postgresURL, body)
    }

    struct Row: Sendable {
        var sourceID, path, sha256, kind: String
        var size: Int
        var title, frontmatter, frontmatterError, body: String?
    }

    /// Rows by path, byte for byte: `String` equality would make `é` and `e` + U+0301 one key.
    struct Rows: Sendable {
        var byPath: [[UInt8]: Row] = [:]
        subscript(_ path: String) -> Row? { byPath[Array(path.utf8)] }
        var paths: Set<[UInt8]> { Set(byPath.keys) }
        var all: [Row] { Array(byPath.values) }
    }

    func documents() async throws -> Rows {
        try await withConnection { c in
            var rows = Rows()
            for row in try await c.query("""
                SELECT source_id, path, sha256, kind, size, title, frontmatter::text, frontmatter_error, body
                  FROM \(unescaped: schema.documents)
                """) {
                let r = Row(sourceID: try row.decode(String.self, 0), path: try row.decode(String.self, 1),
                            sha256: try row.decode(String.self, 2), kind: try row.decode(String.self, 3),
                            size: try row.decode(Int.self, 4), title: try row.decode(String?.self, 5),
                            frontmatter: try row.decode(String?.self, 6), frontmatterError: try row.decode(String?.self, 7),
                            body: try row.decode(String?.self, 8))
                rows.byPath[Array(r.path.utf8)] = r
            }
            return rows
        }
    }

    /// `path → reason` of `source`'s failures, with their attempts.
    func failures(_ source: String) async throws -> [String: (reason: String, attempts: Int, message: String)] {
        try await withConnection { c in
            var out: [String: (reason: String, attempts: Int, message: String)] = [:]
            for row in try await c.query("""
                SELECT path, reason, attempts, message FROM \(unescaped: schema.failures) WHERE source_id = \(source)
                """) {
                out[try row.decode(String.self, 0)] = (try row.decode(String.self, 1), try row.decode(Int.self, 2),
                                                       try row.decode(String.self, 3))
            }
            return out
        }
    }

    /// Rows of documents and failures holding `needle` anywhere, or the SHA-256 of `hashOf`.
    func rowsContaining(_ needle: String, hashOf bytes: [UInt8]) async throws -> Int {
        let sha = SHA256.hex(bytes)
        return try await withConnection { c in
            let documents = try await c.query("""
                SELECT count(*) FROM \(unescaped: schema.documents)
                 WHERE strpos(concat_ws(' ', path, title, frontmatter::text, frontmatter_error, body), \(needle)) > 0
                    OR sha256 = \(sha)
                """)[0].decode(Int.self, 0)
            let failures = try await c.query("""
                SELECT count(*) FROM \(unescaped: schema.failures) WHERE strpos(concat_ws(' ', path, message), \(needle)) > 0
                """)[0].decode(Int.self, 0)
            return documents + failures
        }
    }

    /// Checkpoints of any run whose path is not in that run's plan.
    func unplannedCheckpoints() async throws -> Int {
        try await withConnection { c in
            try await c.query("""
                SELECT count(*) FROM \(unescaped: schema.checkpoints) k
                 WHERE NOT EXISTS (SELECT 1 FROM \(unescaped: schema.plannedPaths) p WHERE p.run_id = k.run_id AND p.path = k.path)
                """)[0].decode(Int.self, 0)
        }
    }

    /// Whether the stored row for `path` is what the importer makes of `bytes` (jsonb compared as JSON).
    func matchesImporter(_ row: Row, bytes: [UInt8]) async throws -> Bool {
        let expected = Importer.importFile(bytes: bytes, path: row.path, mtime: Date())
        guard row.sha256 == expected.sha256, row.size == expected.size, row.kind == expected.kind.rawValue,
              row.title == expected.title, row.frontmatterError == expected.frontmatterError,
              row.body == expected.body else { return false }
        return try await withConnection { c in
            try await c.query("""
                SELECT \(row.frontmatter)::jsonb IS NOT DISTINCT FROM \(expected.frontmatterJSON)::jsonb
                """)[0].decode(Bool.self, 0)
        }
    }
}

/// A seeded generator, so that a failing fuzz run can be replayed from the seed it reports.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
