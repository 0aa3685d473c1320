import FleetCrypto
import FleetPostgres
import Foundation

/// Failures the coordinator finds itself, while planning: names that are not valid UTF-8
/// (SPEC §5, §6.8). No worker can import them, so they are never published: each is planned and
/// checkpointed `failed` in the plan's own fenced transaction, which counts it in the run's
/// summary (exit 3), and upserted into `failures`, where `filefleet status` shows it.
struct Quarantine: Sendable {
    let schema: Schema

    /// Call inside the lease's fenced transaction that created `run`, with the escaped names it planned.
    /// Quarantined names no longer seen (renamed or deleted) leave `failures`.
    /// With `gone` (git mode's diff, which sees only what changed), only those rows leave.
    func recordInvalidNames(_ names: [String], gone: [String]? = nil, run: Int64, sourceID: String,
                            on c: PostgresConnection) async throws {
        if let gone { try await delete(gone, reason: InvalidName.reason, sourceID: sourceID, on: c) }
        try await record(names, reason: InvalidName.reason, message: InvalidName.message, run: run, sourceID: sourceID,
                         sweep: gone == nil, on: c)
    }

    /// Stand-in keys (`LongPath.key`) of paths too long to be keys. A directory walk sees every
    /// such path, so rows it no longer sees leave; git mode, which sees only what changed, names
    /// the keys of paths that are `gone` instead.
    func recordLongPaths(_ keys: [String], run: Int64, sourceID: String, on c: PostgresConnection) async throws {
        try await record(keys, reason: LongPath.reason, message: LongPath.message, run: run, sourceID: sourceID, on: c)
    }

    func recordLongPaths(_ keys: [String], gone: [String], run: Int64, sourceID: String, on c: PostgresConnection) async throws {
        try await delete(gone, reason: LongPath.reason, sourceID: sourceID, on: c)
        try await record(keys, reason: LongPath.reason, message: LongPath.message, run: run, sourceID: sourceID,
                         sweep: false, on: c)
    }

    private func delete(_ paths: [String], reason: String, sourceID: String, on c: PostgresConnection) async throws {
        guard !paths.isEmpty else { return }
        try await c.execute("""
            DELETE FROM \(unescaped: schema.failures)
             WHERE source_id = \(sourceID) AND reason = \(reason) AND path = ANY(\(paths)::text[])
            """)
    }

    /// Directories a walk could not list. Rows of directories it lists again (or no longer sees) leave.
    func recordUnreadableDirectories(_ paths: [String], run: Int64, sourceID: String, on c: PostgresConnection) async throws {
        try await record(paths, reason: UnreadableDirectory.reason, message: UnreadableDirectory.message, run: run,
                         sourceID: sourceID, on: c)
    }

    /// Quarantines `names` with `reason`, and lets rows of that reason no longer seen leave.
    private func record(_ names: [String], reason: String, message: String, run: Int64, sourceID: String,
                        sweep: Bool = true, on c: PostgresConnection) async throws {
        if sweep {
            try await c.execute("""
                DELETE FROM \(unescaped: schema.failures)
                 WHERE source_id = \(sourceID) AND reason = \(reason) AND path <> ALL(\(names)::text[])
                """)
        }
        guard !names.isEmpty else { return }
        try await c.execute("""
            INSERT INTO \(unescaped: schema.failures) AS f (source_id, path, reason, message, attempts, run_id)
            SELECT \(sourceID), p, \(reason), \(message), 1, \(run)
              FROM unnest(\(names)::text[]) AS t(p)
            ON CONFLICT (source_id, path) DO UPDATE
               SET reason = excluded.reason, message = excluded.message, run_id = excluded.run_id,
                   attempts = f.attempts + 1, last_seen = now()
            """)
        try await c.execute("""
            INSERT INTO \(unescaped: schema.checkpoints) (run_id, path, outcome, worker)
            SELECT \(run), p, 'failed', 'coordinator' FROM unnest(\(names)::text[]) AS t(p)
            ON CONFLICT DO NOTHING
            """)
    }
}

/// A relative path longer than `maxBytes` cannot be a key of `planned_paths`, `checkpoints`,
/// `documents` or `failures` (a btree entry holds at most 2704 bytes), so the coordinator
/// quarantines it at planning (`path_too_long`) under a stand-in key that fits: the first 200
/// bytes, `…`, and the SHA-256 of the whole path, unique per path and found again by each walk.
enum LongPath {
    static let maxBytes = 2048
    static let reason = "path_too_long"
    static let message = "path_too_long: the relative path is longer than \(maxBytes) bytes (shown as its first 200 bytes, …, "
        + "and the SHA-256 of the whole path); shorten it to import it"

    /// `paths` that fit, and the keys of the others: those on disk, and those gone.
    static func setAside(_ paths: [String], root: String) -> (fits: [String], onDisk: [String], gone: [String]) {
        var fits: [String] = [], onDisk: [String] = [], gone: [String] = []
        for path in paths {
            guard path.utf8.count > maxBytes else { fits.append(path); continue }
            var info = stat()
            let missing = lstat(root + "/" + path, &info) != 0 && (errno == ENOENT || errno == ENOTDIR)
            if missing { gone.append(key(path)) } else { onDisk.append(key(path)) }
        }
        return (fits, onDisk, gone)
    }

    static func key(_ path: String) -> String {
        let bytes = Array(path.utf8)
        var end = min(200, bytes.count)
        while end > 0, end < bytes.count, bytes[end] & 0xC0 == 0x80 { end -= 1 }  // a UTF-8 boundary
        return String(decoding: bytes[..<end], as: UTF8.self) + "…" + SHA256.hex(bytes)
    }
}

/// A directory of the source that exists but cannot be listed (permission denied): what is under
/// it cannot be seen, so it is quarantined as one entry, under its own relative path, until a walk
/// can list it. Stored documents under it stay as they are (their files are planned, and fail
/// `unreadable` if they cannot be read either).
enum UnreadableDirectory {
    static let reason = "unreadable_directory"
    static let message = "unreadable_directory: the directory cannot be listed (permission denied), so nothing under it "
        + "can be imported; give the importing user read and search permission on it"
}
