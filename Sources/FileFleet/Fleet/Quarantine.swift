import FleetCrypto
import FleetPostgres
import Foundation

/// Failures the coordinator finds itself, while planning: names that are not valid UTF-8
/// (SPEC §5, §6.8). No worker can import them, so they are never published: each is planned and
/// checkpointed `failed` in the plan's own fenced transaction, which counts it in the run's
/// summary (exit 3), and upserted into `failures`, where `filefleet status` shows it.
struct Quarantine: Sendable {
    let schema: Schema
    private var failures: FailureStore { FailureStore(schema: schema) }

    /// The names a directory plan quarantines, of every reason.
    func record(_ plan: DirectoryPlan, run: Int64, sourceID: String, on c: PostgresConnection) async throws {
        try await recordInvalidNames(plan.invalidNames, run: run, sourceID: sourceID, on: c)
        try await recordLongPaths(plan.longPaths, run: run, sourceID: sourceID, on: c)
        try await recordUnreadableDirectories(plan.unreadableDirectories, run: run, sourceID: sourceID, on: c)
    }

    /// Call inside the lease's fenced transaction that created `run`, with the escaped names it planned.
    /// Quarantined names no longer seen (renamed or deleted) leave `failures`.
    /// With `gone` (git mode's diff, which sees only what changed), only those rows leave.
    func recordInvalidNames(_ names: [String], gone: [String]? = nil, run: Int64, sourceID: String,
                            on c: PostgresConnection) async throws {
        if let gone { try await failures.delete(gone, reason: InvalidName.reason, sourceID: sourceID, on: c) }
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
        try await failures.delete(gone, reason: LongPath.reason, sourceID: sourceID, on: c)
        try await record(keys, reason: LongPath.reason, message: LongPath.message, run: run, sourceID: sourceID,
                         sweep: false, on: c)
    }

    /// Directories a walk could not list. Rows of directories it lists again (or no longer sees) leave.
    func recordUnreadableDirectories(_ paths: [String], run: Int64, sourceID: String, on c: PostgresConnection) async throws {
        try await record(paths, reason: UnreadableDirectory.reason, message: UnreadableDirectory.message, run: run,
                         sourceID: sourceID, on: c)
    }

    /// Quarantines `names` with `reason`, and lets rows of that reason no longer seen leave.
    private func record(_ names: [String], reason: String, message: String, run: Int64, sourceID: String,
                        sweep: Bool = true, on c: PostgresConnection) async throws {
        if sweep { try await failures.delete(reason: reason, except: names, sourceID: sourceID, on: c) }
        guard !names.isEmpty else { return }
        try await failures.record(names.map { ($0, reason, message, 1) }, run: run, sourceID: sourceID, on: c)
        try await CheckpointStore(schema: schema).append(paths: names, outcome: .failed, run: run, on: c)
    }
}
