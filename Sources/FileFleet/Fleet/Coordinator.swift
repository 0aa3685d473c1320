import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

/// `filefleet sync`: one run of one source, from lease to finalize (SPEC §1, §6).
public struct Coordinator: Sendable {
    public let settings: FleetSettings
    public let log: Log
    /// `/metrics` and `/readyz` of `filefleet sync --http`.
    public let metrics: FleetMetrics

    public init(settings: FleetSettings, log: Log = Log(component: "coordinator"), metrics: FleetMetrics = FleetMetrics()) {
        self.settings = settings
        self.log = log
        self.metrics = metrics
    }

    /// Runs to completion and describes the outcome; throws only `UsageError` (exit 2).
    /// Cancellation (SIGINT/SIGTERM) stops publishing and releases the lease: `interrupted`.
    public func sync(_ sourcePath: String, options: SyncOptions,
                     progress: @escaping @Sendable (SyncProgress) -> Void = { _ in }) async throws -> SyncSummary {
        let started = ContinuousClock.now
        let root = try Self.resolveRoot(sourcePath)
        let sourceID = options.sourceID ?? URL(fileURLWithPath: root).lastPathComponent
        let mode: SourceMode = GitRepository.isWorkTree(root) ? .git : .directory
        var summary = SyncSummary(status: .completed, sourceID: sourceID, mode: mode.rawValue)
        // Three: its own import reads the next page while two batches are written.
        let pool = PostgresPool(url: settings.postgresURL, maxConnections: 3, acquireTimeout: .seconds(30))
        let facts = RunFacts()
        do {
            _ = try await withRetry(.fleet, what: "the schema migration") { try await settings.schema.migrate(pool) }
            let sources = SourceStore(schema: settings.schema)
            _ = try await withRetry(.fleet, what: "the source's registration") {
                try await pool.withConnection { c in
                    try await sources.register(id: sourceID, root: root, mode: mode, on: c)
                }
            }
            summary = try await Lease.hold("sync:\(sourceID)", timing: options.lease, schema: settings.schema,
                                           url: settings.postgresURL, onHeartbeat: { [metrics] _ in metrics.heartbeat() }) { lease in
                facts.record(leaseToken: lease.token)
                metrics.setLeaseToken(lease.token)
                metrics.heartbeat()
                metrics.setReady("coordinator")
                defer { metrics.setReady("coordinator", notReady: "its run has ended") }
                return try await RunDriver(settings: settings, options: options, pool: pool, lease: lease, log: log,
                                    progress: progress, facts: facts, metrics: metrics)
                    .drive(sourceID: sourceID, root: root, mode: mode)
            }
        } catch let busy as LeaseBusy {
            summary.status = .skipped
            summary.reason = busy.description
        } catch is CancellationError {
            summary.status = .interrupted
        } catch let error as UsageError {
            await pool.close()
            throw error
        } catch {
            let stop = RunStop(error)
            summary.status = .aborted
            summary.reason = stop.reason
            summary.error = stop.error
            log.event("aborted", ["reason": stop.reason, "error": stop.error], level: .error)
            // Fenced by the token: a holder that lost the lease (cut off, frozen) must not mark
            // its successor's run as stopped.
            if let run = facts.run, let token = facts.leaseToken {
                do {
                    _ = try await pool.withConnection { c in
                        try await RunStore(schema: settings.schema).recordStop(stop, run: run, lease: ("sync:\(sourceID)", token), on: c)
                    }
                } catch {
                    log.event("store_call_failed", ["what": "recording why the run stopped", "error": Redact.scrub("\(error)")], level: .warning)
                }
            }
        }
        await pool.close()
        if summary.status == .aborted || summary.status == .interrupted { facts.fill(&summary) }
        summary.elapsed_seconds = (ContinuousClock.now - started).seconds
        return summary
    }

    static func resolveRoot(_ path: String) throws -> String {
        guard let resolved = realpath(path, nil) else {
            throw UsageError("SOURCE \(path): \(String(cString: strerror(errno)))")
        }
        defer { free(resolved) }
        var info = stat()
        let root = String(cString: resolved)
        guard stat(root, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw UsageError("SOURCE \(path) is not a directory")
        }
        return root
    }
}

extension WorkerOptions {
    static func inProcess(_ sync: SyncOptions) -> WorkerOptions {
        var options = WorkerOptions()
        options.concurrency = max(1, System.coreCount / max(1, sync.workers))
        options.batchTimeout = sync.batchTimeout
        options.batchSize = sync.batchSize
        return options
    }
}
