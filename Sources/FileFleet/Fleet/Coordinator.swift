public import FleetKafka
public import FleetPostgres
import Foundation
import Synchronization

/// Progress of a run, as the coordinator sees it in the checkpoints.
public struct SyncProgress: Sendable {
    public var planned: Int
    public var done: Int
    /// Done when this invocation started (banked by an earlier attempt).
    public var resumed: Int
}

/// `filefleet sync`: one run of one source, from lease to finalize (SPEC §1, §6).
public struct Coordinator: Sendable {
    public let settings: FleetSettings
    public let log: Log

    public init(settings: FleetSettings, log: Log = Log(component: "coordinator")) {
        self.settings = settings
        self.log = log
    }

    /// Runs to completion and describes the outcome; throws only `UsageError` (exit 2).
    /// Cancellation (SIGINT/SIGTERM) stops publishing and releases the lease: `interrupted`.
    public func sync(_ sourcePath: String, options: SyncOptions,
                     progress: @escaping @Sendable (SyncProgress) -> Void = { _ in }) async throws -> SyncSummary {
        let started = ContinuousClock.now
        let root = try Self.resolveRoot(sourcePath)
        let sourceID = options.sourceID ?? URL(fileURLWithPath: root).lastPathComponent
        let mode = "directory"
        var summary = SyncSummary(status: .completed, sourceID: sourceID, mode: mode)
        let pool = PostgresPool(url: settings.postgresURL, maxConnections: 2, acquireTimeout: .seconds(30))
        let facts = RunFacts()
        do {
            try await withRetry(Self.storeRetry) { try await settings.schema.migrate(pool) }
            let store = RunStore(schema: settings.schema)
            _ = try await withRetry(Self.storeRetry) {
                try await pool.withConnection { c in
                    try await store.registerSource(id: sourceID, root: root, mode: mode, on: c)
                }
            }
            try await ensureTopic()
            let producer = try KafkaProducer(configuration: settings.kafka)
            let workers = (0..<options.workers).map { _ in
                Worker(settings: settings, options: WorkerOptions.inProcess(options), log: log.child("worker"))
            }
            // In-process workers join the group only once there is work: a no-op sync must not wait
            // for a join and a leave (seconds on the local broker).
            let workNeeded = WorkGate()
            summary = try await withThrowingTaskGroup(of: SyncSummary?.self) { group in
                for worker in workers {
                    group.addTask {
                        if await workNeeded.wait() { try await worker.run() }
                        return nil
                    }
                }
                group.addTask {
                    defer {
                        workers.forEach { $0.requestStop() }
                        workNeeded.open(false)
                    }
                    return try await Lease.hold("sync:\(sourceID)", timing: options.lease, schema: settings.schema,
                                                url: settings.postgresURL) { lease in
                        try await RunDriver(settings: settings, options: options, pool: pool, producer: producer,
                                            lease: lease, log: log, progress: progress, facts: facts,
                                            workNeeded: { workNeeded.open(true) })
                            .drive(sourceID: sourceID, root: root, mode: mode)
                    }
                }
                var result: SyncSummary? = nil
                do {
                    while let next = try await group.next() { if let next { result = next } }
                } catch {
                    workers.forEach { $0.requestStop() }
                    workNeeded.open(false)
                    group.cancelAll()
                    throw error
                }
                return result!
            }
            await producer.close()
        } catch let busy as LeaseBusy {
            summary.status = .skipped
            summary.reason = busy.description
        } catch let lost as LeaseLost {
            // The reason is the code SPEC §4 names; the details go to the log.
            summary.status = .aborted
            summary.reason = "lease_lost"
            log.event("aborted", ["reason": "lease_lost", "error": "\(lost)"])
        } catch is CancellationError {
            summary.status = .interrupted
        } catch let error as PostgresError where error.isRetryable {
            summary.status = .aborted
            summary.reason = "store_unavailable"
            log.event("aborted", ["reason": "store_unavailable", "error": "\(error)"])
        } catch let error as PostgresPoolError {
            summary.status = .aborted
            summary.reason = "store_unavailable"
            log.event("aborted", ["reason": "store_unavailable", "error": "\(error)"])
        } catch let error as UsageError {
            await pool.close()
            throw error
        } catch {
            summary.status = .aborted
            summary.reason = "\(error)"
        }
        await pool.close()
        if summary.status == .aborted || summary.status == .interrupted { facts.fill(&summary) }
        summary.elapsed_seconds = (ContinuousClock.now - started).seconds
        return summary
    }

    func ensureTopic() async throws {
        let admin = try KafkaAdmin(configuration: settings.kafka)
        try await admin.createTopic(settings.topic, partitions: settings.partitions)
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

    static let storeRetry = RetryPolicy(maxAttempts: 8, baseDelay: .milliseconds(200), maxDelay: .seconds(5),
                                        totalBudget: .seconds(60))
}

extension WorkerOptions {
    static func inProcess(_ sync: SyncOptions) -> WorkerOptions {
        var options = WorkerOptions()
        options.concurrency = max(1, System.coreCount / max(1, sync.workers))
        return options
    }
}

/// Opens once, with a verdict: whether the in-process workers are needed.
final class WorkGate: Sendable {
    private let state = Mutex<(verdict: Bool?, waiters: [CheckedContinuation<Bool, Never>])>((nil, []))

    func open(_ verdict: Bool) {
        let waiters = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            guard s.verdict == nil else { return [] }
            s.verdict = verdict
            defer { s.waiters = [] }
            return s.waiters
        }
        waiters.forEach { $0.resume(returning: verdict) }
    }

    func wait() async -> Bool {
        await withCheckedContinuation { continuation in
            let verdict = state.withLock { s -> Bool? in
                if s.verdict == nil { s.waiters.append(continuation) }
                return s.verdict
            }
            if let verdict { continuation.resume(returning: verdict) }
        }
    }
}

/// What a run driver learnt before it stopped, for the summary of a run that did not finish.
final class RunFacts: Sendable {
    private let state = Mutex<(run: Int64?, planned: Int, resumed: Int)>((nil, 0, 0))

    func record(run: Int64, planned: Int, resumed: Int) { state.withLock { $0 = (run, planned, resumed) } }

    func fill(_ summary: inout SyncSummary) {
        let (run, planned, resumed) = state.withLock { $0 }
        guard let run else { return }
        summary.run_id = run
        summary.planned = planned
        summary.resumed = resumed
    }
}

/// The body of a sync while the lease is held: plan or resume, publish, wait, finalize.
struct RunDriver: Sendable {
    let settings: FleetSettings
    let options: SyncOptions
    let pool: PostgresPool
    let producer: KafkaProducer
    let lease: Lease
    let log: Log
    let progress: @Sendable (SyncProgress) -> Void
    var facts = RunFacts()
    var workNeeded: @Sendable () -> Void = {}

    var store: RunStore { RunStore(schema: settings.schema) }

    func drive(sourceID: String, root: String, mode: String) async throws -> SyncSummary {
        var summary = SyncSummary(status: .completed, sourceID: sourceID, mode: mode)
        let since = try await db { c in try await store.databaseNow(on: c) }
        let run: RunRecord
        if let open = try await db({ c in try await store.openRun(sourceID: sourceID, on: c) }) {
            run = open
            log.event("resume", ["run": String(run.id), "source": sourceID, "planned": String(run.planned)])
        } else {
            let planner = DirectoryPlanner(schema: settings.schema)
            let plan = try await db { c in
                try await planner.plan(sourceID: sourceID, root: root, filter: PathFilter(includes: options.includes,
                                                                                          excludes: options.excludes), on: c)
            }
            for name in plan.invalidNames { log.event("skipped", ["reason": "invalid_name", "path": name]) }
            run = try await db { c in
                try await lease.fenced(on: c) { c in
                    try await planner.touch(plan.touched, sourceID: sourceID, on: c)
                    return try await store.createRun(sourceID: sourceID, mode: mode, pin: nil, token: lease.token,
                                                     plan: plan.paths, maxFileBytes: options.maxFileBytes,
                                                     maxAttempts: options.maxAttempts, on: c)
                }
            }
            log.event("planned", ["run": String(run.id), "source": sourceID, "listed": String(plan.listed),
                                  "planned": String(run.planned)])
        }
        summary.run_id = run.id
        summary.planned = run.planned
        let resumed = try await db { c in try await store.checkpointCount(run: run.id, on: c) }
        summary.resumed = resumed
        facts.record(run: run.id, planned: run.planned, resumed: resumed)
        progress(SyncProgress(planned: run.planned, done: resumed, resumed: resumed))

        if resumed < run.planned {
            workNeeded()
            try await publishRemaining(run)
            try await waitForCompletion(run, resumed: resumed)
        }

        let all = try await db { c in try await store.outcomes(run: run.id, on: c) }
        let state = all.failed > 0 ? "completed_with_failures" : "completed"
        try await db { c in
            try await lease.fenced(on: c) { c in try await store.finish(run: run.id, state: state, on: c) }
        }
        let mine = try await db { c in try await store.outcomes(run: run.id, since: since, on: c) }
        summary.imported = mine.imported
        summary.unchanged = mine.unchanged
        summary.deleted = mine.deleted
        summary.failed = mine.failed
        summary.status = all.failed > 0 ? .completed_with_failures : .completed
        log.event("finished", ["run": String(run.id), "state": state])
        return summary
    }

    /// Publishes every planned path without a checkpoint, delivery-confirmed, in batches. The
    /// remaining set is read in a fenced transaction: a superseded holder publishes nothing.
    func publishRemaining(_ run: RunRecord) async throws {
        let remaining = try await db { c in
            try await lease.fenced(on: c) { c in try await store.remainingPaths(run: run.id, on: c) }
        }
        var published = 0
        for start in stride(from: 0, to: remaining.count, by: 5000) {
            if lease.isLost { throw LeaseLost(name: lease.name, token: lease.token) }
            try Task.checkCancellation()
            let records = remaining[start..<min(start + 5000, remaining.count)].map { path in
                let message = PathMessage(run: run.id, source: run.sourceID, path: path)
                return KafkaRecord(topic: settings.topic, key: message.key, value: message.encoded())
            }
            try await producer.sendBatch(records)
            published += records.count
        }
        log.event("published", ["run": String(run.id), "paths": String(published)])
    }

    /// Polls the checkpoint count until every planned path is done; republishes after a stall.
    func waitForCompletion(_ run: RunRecord, resumed: Int) async throws {
        let clock = ContinuousClock()
        var lastDone = resumed
        var lastProgress = clock.now
        while true {
            try await Task.sleep(for: options.pollInterval)
            if lease.isLost { throw LeaseLost(name: lease.name, token: lease.token) }
            let done = try await db { c in try await store.checkpointCount(run: run.id, on: c) }
            progress(SyncProgress(planned: run.planned, done: done, resumed: resumed))
            if done >= run.planned { return }
            if done > lastDone {
                lastDone = done
                lastProgress = clock.now
            } else if clock.now - lastProgress >= options.stallWindow {
                log.event("stalled", ["run": String(run.id), "remaining": String(run.planned - done)])
                try await publishRemaining(run)
                lastProgress = clock.now
            }
        }
    }

    /// A statement through the pool, retried while Postgres is transiently unavailable (SPEC §6.9).
    @discardableResult
    func db<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withRetry(Coordinator.storeRetry) { try await pool.withConnection(body) }
    }
}
