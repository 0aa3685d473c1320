import FleetKafka
import FleetPostgres
import Foundation

/// The body of a sync while the lease is held: plan or resume, publish, wait, finalize.
struct RunDriver: Sendable {
    let settings: FleetSettings
    let options: SyncOptions
    let pool: PostgresPool
    let lease: Lease
    var log: Log
    let progress: @Sendable (SyncProgress) -> Void
    var facts = RunFacts()
    var metrics = FleetMetrics()

    var store: RunStore { RunStore(schema: settings.schema) }
    var sources: SourceStore { SourceStore(schema: settings.schema) }
    var checkpoints: CheckpointStore { CheckpointStore(schema: settings.schema) }
    var registry: WorkerRegistry { WorkerRegistry(schema: settings.schema) }

    func drive(sourceID: String, root: String, mode: SourceMode) async throws -> SyncSummary {
        let workers = InProcessWorkers(count: options.workers, settings: settings, options: WorkerOptions.inProcess(options),
                                       log: log.child("worker"), metrics: metrics)
        let producer = ProducerWarmup(configuration: settings.kafka)
        do {
            let summary = try await drive(sourceID: sourceID, root: root, mode: mode, workers: workers, producer: producer)
            await workers.stop()  // started for a plan that turned out to need none of them
            await producer.close()
            return summary
        } catch {
            await workers.stop()
            await producer.close()
            throw error
        }
    }

    private func drive(sourceID: String, root: String, mode: SourceMode, workers: InProcessWorkers,
                       producer: ProducerWarmup) async throws -> SyncSummary {
        // Once a run is sure to be too large to import directly, its producer gets ready while
        // the plan is stored, if it will publish: a sync with in-process workers imports the run
        // itself and readies it (and starts its workers) only once it hands over (see `complete`).
        let publishes = options.directMax == 0 || options.workers == 0
        let needsKafka: @Sendable () -> Void = { if publishes { producer.start() } }
        let summary = SyncSummary(status: .completed, sourceID: sourceID, mode: mode.rawValue)
        let since = try await db { c in try await store.databaseNow(on: c) }
        let run: RunRecord
        var open = try await db { c in try await store.openRun(sourceID: sourceID, on: c) }
        var discarded = false
        if let stale = open, try await !keepsPin(stale, root: root) { (open, discarded) = (nil, true) }
        if let open {
            run = open
            log.event("resume", ["run": String(run.id), "source": sourceID, "planned": String(run.planned)])
            try await db { c in try await store.recordStop(nil, run: run.id, on: c) }
        } else if mode == .git {
            run = try await planGitRun(sourceID: sourceID, root: root, full: discarded, large: needsKafka)
        } else {
            let planner = DirectoryPlanner(schema: settings.schema)
            let filter = PathFilter(includes: options.includes, excludes: options.excludes)
            // Planned and stored on one connection: the plan is staged in a table of its session.
            let (created, plan, listing, storing) = try await db { c in
                let listing = ContinuousClock.now
                if try await planner.isFirstSync(sourceID: sourceID, on: c) {
                    // Nothing to compare the listing with: it is the plan, copied into the new run as walked.
                    let (run, plan) = try await storeFirst(sourceID: sourceID, root: root, filter: filter, large: needsKafka, on: c)
                    return (run, plan, listing, listing + plan.walking)
                }
                let plan = try await planner.plan(sourceID: sourceID, root: root, filter: filter,
                                                  largeAbove: options.directMax, large: needsKafka, on: c, counting: pool)
                try MassDeletion.check(deleting: plan.deletions, of: plan.stored, root: root, allowed: options.allowMassDelete)
                let storing = ContinuousClock.now
                let run = try await store(.directory(plan), sourceID: sourceID, on: c)
                try await planner.discard(on: c)
                return (run, plan, listing, storing)
            }
            run = created
            for name in plan.invalidNames { log.event("quarantined", ["reason": InvalidName.reason, "path": name], level: .warning) }
            for key in plan.longPaths { log.event("quarantined", ["reason": LongPath.reason, "path": key], level: .warning) }
            for path in plan.unreadableDirectories {
                log.event("quarantined", ["reason": UnreadableDirectory.reason, "path": path], level: .warning)
            }
            log.event("planned", ["run": String(run.id), "source": sourceID, "listed": String(plan.listed),
                                  "planned": String(run.planned), "plan_seconds": Self.seconds(storing - listing),
                                  "walk_seconds": Self.seconds(plan.walking), "compare_seconds": Self.seconds(plan.comparing),
                                  "store_seconds": Self.seconds(.now - storing)])
        }
        // Recorded at once: a run that stops from here on still names its run in the summary.
        facts.record(run: run.id, planned: run.planned, resumed: 0)
        return try await scoped(to: run).complete(run, since: since, summary: summary, workers: workers, producer: producer)
    }

    /// Stores a new run and its plan, of either kind, in one transaction fenced by the lease:
    /// the source's mode, the plan's paths, the rows it removes (checkpointed `deleted`) and what
    /// it quarantines (checkpointed `failed`).
    private func store(_ plan: Plan, sourceID: String, on c: PostgresConnection) async throws -> RunRecord {
        try await lease.fenced(on: c) { c in
            let quarantine = Quarantine(schema: settings.schema)
            let limits = (maxFileBytes: options.maxFileBytes, maxAttempts: options.maxAttempts)
            switch plan {
            case .directory(let plan):
                try await sources.adoptMode(.directory, sourceID: sourceID, on: c)
                let planner = DirectoryPlanner(schema: settings.schema)
                try await planner.touch(plan, sourceID: sourceID, on: c)
                let run = try await store.createRun(sourceID: sourceID, staged: plan, token: lease.token,
                                                    maxFileBytes: limits.maxFileBytes, maxAttempts: limits.maxAttempts, on: c)
                try await planner.remove(plan, run: run.id, sourceID: sourceID, on: c)
                try await quarantine.record(plan, run: run.id, sourceID: sourceID, on: c)
                return run
            case .git(let plan, let longKeys, let longGone):
                try await sources.adoptMode(.git, sourceID: sourceID, on: c)
                let run = try await store.createRun(plan, sourceID: sourceID, token: lease.token,
                                                    maxFileBytes: limits.maxFileBytes, maxAttempts: limits.maxAttempts, on: c)
                try await quarantine.recordLongPaths(longKeys, gone: longGone, run: run.id, sourceID: sourceID, on: c)
                // A full listing sees every name; a diff only the changed ones.
                try await quarantine.recordInvalidNames(plan.invalidNames, gone: plan.full ? nil : plan.invalidGone,
                                                        run: run.id, sourceID: sourceID, on: c)
                return run
            }
        }
    }

    /// Plans and stores a first sync's run in one transaction fenced by the lease
    /// (`DirectoryPlanner.planFirst`): a kill before it commits leaves no run behind.
    private func storeFirst(sourceID: String, root: String, filter: PathFilter, large: @escaping @Sendable () -> Void,
                            on c: PostgresConnection) async throws -> (RunRecord, DirectoryPlan) {
        try await lease.fenced(on: c) { c in
            try await sources.adoptMode(.directory, sourceID: sourceID, on: c)
            let planner = DirectoryPlanner(schema: settings.schema)
            var plan = DirectoryPlan()
            let run = try await store.createRun(sourceID: sourceID, token: lease.token, maxFileBytes: options.maxFileBytes,
                                                maxAttempts: options.maxAttempts, on: c) { run in
                plan = try await planner.planFirst(run: run.id, root: root, filter: filter,
                                                   largeAbove: options.directMax, large: large, on: c)
                return plan.planned
            }
            try await Quarantine(schema: settings.schema).record(plan, run: run.id, sourceID: sourceID, on: c)
            return (run, plan)
        }
    }

    /// This driver with every line of `run` carrying its id and source.
    private func scoped(to run: RunRecord) -> RunDriver {
        var driver = self
        driver.log = log.with(["run": String(run.id), "source": run.sourceID])
        return driver
    }

    /// Imports what remains of `run` (directly, or through Kafka and the workers) and finalizes it.
    private func complete(_ run: RunRecord, since: Date, summary: SyncSummary, workers: InProcessWorkers,
                          producer: ProducerWarmup) async throws -> SyncSummary {
        var summary = summary
        summary.run_id = run.id
        summary.mode = run.mode.rawValue
        summary.planned = run.planned
        // Banked before this invocation: resumed. A new plan's quarantined names are done, not resumed.
        summary.resumed = try await db { c in try await checkpoints.count(run: run.id, before: since, on: c) }
        let banked = try await db { c in try await checkpoints.count(run: run.id, on: c) }
        facts.record(run: run.id, planned: run.planned, resumed: summary.resumed)
        progress(SyncProgress(planned: run.planned, done: banked, resumed: summary.resumed))
        // The plan's pages are read in path order: with statistics older than the plan, the server
        // sorted the whole run for every page of 500 (23 ms a page at 100,000 paths), not an index range.
        if run.planned - banked > options.directMax { try await db { c in try await store.analyzePlans(on: c) } }

        if banked < run.planned && run.planned - banked <= options.directMax {
            try await importDirectly(run, banked: banked, resumed: summary.resumed)
        } else if banked < run.planned {
            // Kafka only when there is work: a run with nothing left finishes without it.
            // With in-process workers, the coordinator imports the run itself, as a direct import
            // does: on one machine Kafka buys a run nothing (the same reads and transactions, plus
            // a round trip through the broker: 33,000 against 23,000 files/s on two cores). Once
            // a worker of another process is live, it hands the rest over to Kafka, where that
            // worker takes a share, and starts its own workers if the rest outlasts their group
            // join (seconds; after a kill as long as the session timeout, while the dead members
            // expire). A rest it finishes sooner than the handover would take it keeps. What it
            // banks is not published. `--direct-max 0` sends every path through Kafka.
            let directly = ContinuousClock.now
            let importsItself = options.directMax > 0 && workers.joining
            let others = OtherWorkers()
            if importsItself {
                others.watch(every: .seconds(1)) { [pool, registry] in
                    try await pool.withConnection { c in try await registry.liveWorkers(besides: getpid(), on: c) }
                }
            }
            defer { others.stop() }
            if !importsItself { producer.start() }  // a resumed run: ready while the remaining pages are read
            let done = importsItself
                ? try await importDirectly(run, banked: banked, resumed: summary.resumed, while: { left in
                    let shared = others.present
                    if shared { producer.start() }
                    if shared, left.map({ $0 > Self.groupJoin }) ?? true { workers.start() }
                    let short = left.map { $0 < Self.handover } ?? false
                    return short || (!shared && workers.joining)
                })
                : banked
            // The rate of the direct import, if any, says when to count first: the workers
            // import at about that rate (a short tail is done long before a poll interval).
            let rate = Double(done - banked) / max((.now - directly).seconds, 0.001)
            guard done < run.planned else { return try await finish(run, since: since, summary: summary) }
            // Every planned path is banked once the body returns: the run is finalized while the
            // workers leave their group (what they still hold are copies, skipped as banked).
            return try await workers.serving({
                try await publishUntilDelivered(run, producer: producer.take())
                try await waitForCompletion(run, resumed: done, expectedRate: rate)
            }, whileDraining: { try await finish(run, since: since, summary: summary) })
        }
        return try await finish(run, since: since, summary: summary)
    }

    /// Marks `run` finished (fenced; in git mode the bookmark advances to its pin) and fills in
    /// the summary's counts: once every planned path has its checkpoint.
    private func finish(_ run: RunRecord, since: Date, summary: SyncSummary) async throws -> SyncSummary {
        var summary = summary
        let all = try await db { c in try await checkpoints.outcomes(run: run.id, on: c) }
        let state: RunState = all.failed > 0 ? .completedWithFailures : .completed
        try await db { c in
            try await lease.fenced(on: c) { c in
                try await store.finish(run: run.id, state: state, on: c)
                if run.mode == .git { try await sources.advanceBookmark(sourceID: run.sourceID, to: run.pin, on: c) }
            }
        }
        let mine = try await db { c in try await checkpoints.outcomes(run: run.id, since: since, on: c) }
        summary.imported = mine.imported
        summary.unchanged = mine.unchanged
        summary.deleted = mine.deleted
        summary.failed = mine.failed
        summary.status = all.failed > 0 ? .completed_with_failures : .completed
        log.event("finished", ["state": state.rawValue])
        return summary
    }

    /// Imports what remains of a run in this process, as a worker would (the same reads, the same
    /// transaction per batch with its checkpoints), without Kafka: all of a small run, or, with
    /// `while`, as long as that holds. `while` is asked before each batch with the time the rest
    /// would take at the rate so far (nil in the first half second, while the rate is not known).
    /// The remaining set is read fenced, as for publishing; the writes are a worker's, safe
    /// against a concurrent copy. Returns the paths done, banked ones included.
    @discardableResult
    func importDirectly(_ run: RunRecord, banked: Int, resumed: Int,
                        while proceeding: @escaping @Sendable (_ timeLeft: Duration?) -> Bool = { _ in true }) async throws -> Int {
        var workerOptions = WorkerOptions.inProcess(options)
        // Alone while it imports (the in-process workers have no partitions yet): every core reads.
        workerOptions.concurrency = System.coreCount
        // Fenced like every other write of the holder: a superseded coordinator imports nothing more.
        let importer = BatchImporter(settings: settings, options: workerOptions, worker: "sync:\(System.hostName):\(getpid())",
                                     pool: pool, log: log, metrics: metrics, fence: { [lease] c in try await lease.checkCurrent(on: c) })
        var done = banked, imported = 0
        let started = ContinuousClock.now
        var timeLeft: Duration? {
            let elapsed = ContinuousClock.now - started
            guard imported > 0, elapsed >= .milliseconds(500) else { return nil }
            return elapsed * (Double(run.planned - done) / Double(imported))
        }
        // Each page is read while the ones before it are written, as a worker reads ahead.
        var writing: [(task: Task<BatchResult, any Error>, paths: Int, started: ContinuousClock.Instant)] = []
        func finishWriting(leaving: Int) async throws {
            while writing.count > leaving {
                let (task, paths, started) = writing.removeFirst()
                let result = try await task.value
                metrics.recordBatch(result.counts, refused: 0, duration: .now - started)
                done += paths
                imported += paths
                progress(SyncProgress(planned: run.planned, done: done, resumed: resumed))
            }
        }
        do {
            try await forEachRemainingPage(run, size: workerOptions.batchSize, while: { proceeding(timeLeft) }) { paths in
                let started = ContinuousClock.now
                let batch = try await importer.prepareDirectly(paths, run: run.id)
                try await finishWriting(leaving: Self.directWrites - 1)
                writing.append((Task { try await importer.write(batch) }, paths.count, started))
            }
            try await finishWriting(leaving: 0)
        } catch {
            for (task, _, _) in writing { task.cancel() }
            for (task, _, _) in writing { _ = try? await task.value }  // nothing of this run is written after it returns
            throw error
        }
        log.event("imported_directly", ["paths": String(imported)])
        return done
    }

    /// Transactions of a direct import in flight at once.
    static let directWrites = 2

    /// About what handing a run's rest from the direct import to the workers costs before they
    /// import it (publish, fetch, the group settling, the completion count): 0.6–1.2 s measured
    /// on the embedded stack with 10,000–18,000 paths left.
    static let handover = Duration.seconds(1)

    /// About how long in-process workers take to join their group: a direct import that ends
    /// sooner does not start them. Kafka delays a new group's first rebalance by 3 s
    /// (`group.initial.rebalance.delay.ms`); the embedded broker took 2.4 s.
    static let groupJoin = Duration.seconds(3)

    /// Calls `body` with each page of the paths of `run` that have no checkpoint, at most `size`
    /// a page. Each read is a fenced transaction of its own: a superseded holder reads nothing
    /// more, and no transaction stays open while `body` works. Stops early once `proceeding`
    /// (asked before each page) is false. Returns the time spent reading.
    ///
    /// A read of `size` planned paths that are all banked makes the next read 4 times as large
    /// (up to 50,000): a run resumed after its first half was imported in path order (a direct
    /// import) skips that half in a few reads, not one per `size` (2 s at 1,000,000 paths).
    @discardableResult
    func forEachRemainingPage(_ run: RunRecord, size: Int, while proceeding: () -> Bool = { true },
                              _ body: ([String]) async throws -> Void) async throws -> Duration {
        var after: String?
        var reading = Duration.zero
        var limit = size
        repeat {
            guard proceeding() else { break }
            if lease.isLost { throw LeaseLost(name: lease.name, token: lease.token) }
            try Task.checkCancellation()
            let started = ContinuousClock.now
            let page = try await db { [after, limit] c in
                try await lease.fenced(on: c) { c in try await store.remainingPaths(run: run.id, after: after, limit: limit, on: c) }
            }
            reading += .now - started
            for start in stride(from: 0, to: page.paths.count, by: size) {
                if start > 0 { guard proceeding() else { return reading } }
                try await body(Array(page.paths[start..<min(start + size, page.paths.count)]))
            }
            limit = page.paths.isEmpty ? min(limit * 4, max(size, 50_000)) : size
            after = page.next
        } while after != nil
        return reading
    }

    /// Publishes what remains until the broker has confirmed all of it, however long the broker
    /// is away: the broker is not the truth (SPEC §1). Each attempt first creates the topic if it
    /// is missing (a restarted broker may have lost it); a failed one is logged and retried after
    /// 1 s, doubling up to 30 s. Each attempt has a producer of its own: an idempotent producer
    /// whose broker restarted (and forgot its producer id) only times out.
    func publishUntilDelivered(_ run: RunRecord, producer ready: KafkaProducer? = nil) async throws {
        var attempt = 0
        var ready = ready
        while true {
            do {
                try await KafkaAdmin(configuration: settings.kafka).createTopic(settings.topic, partitions: settings.partitions)
                let producer = try ready ?? KafkaProducer(configuration: settings.kafka)
                ready = nil  // a failed attempt's producer is closed; the next one makes its own
                do {
                    try await publishRemaining(run, producer)
                } catch {
                    await producer.close()
                    throw error
                }
                await producer.close()
                if attempt > 0 { log.event("publish_recovered", ["attempts": String(attempt + 1)]) }
                return
            } catch let error as KafkaError {
                // A configuration the client refuses is not an outage: the user must fix it.
                if error.code == .invalidArgument { throw UsageError("Kafka: \(error)") }
                attempt += 1
                let delay = Duration.seconds(min(30, 1 << min(attempt - 1, 5)))
                log.event("publish_failed", ["attempt": String(attempt),
                                             "retry_in_seconds": String(Int(delay.seconds)), "error": "\(error)"], level: .warning)
                try await Task.sleep(for: delay)
                if lease.isLost { throw LeaseLost(name: lease.name, token: lease.token) }
            }
        }
    }

    /// Publishes every planned path without a checkpoint, delivery-confirmed, a page at a time
    /// (each read fenced: a superseded holder publishes nothing more).
    func publishRemaining(_ run: RunRecord, _ producer: KafkaProducer) async throws {
        let started = ContinuousClock.now
        var published = 0
        // Two batches in flight: the next page is read and encoded while the broker confirms this one.
        let reading = try await withThrowingTaskGroup(of: Void.self) { group in
            var inFlight = 0
            // Pages of 50,000 (~5 MB), sent 5,000 at a time. While workers import, the server is
            // busy and each page takes its time (1M paths: 84 s to publish at 5,000 a page, 36 s
            // at 50,000, 30 s of it reading; far ahead of the import either way).
            let reading = try await forEachRemainingPage(run, size: 50_000) { page in
                for start in stride(from: 0, to: page.count, by: 5000) {
                    let records = page[start..<min(start + 5000, page.count)].map { path in
                        let message = PathMessage(run: run.id, source: run.sourceID, path: path).signed(with: run.messageKey)
                        return KafkaRecord(topic: settings.topic, key: message.key, value: message.encoded())
                    }
                    if inFlight == 2 { try await group.next(); inFlight -= 1 }
                    group.addTask { try await producer.sendBatch(records) }
                    inFlight += 1
                }
                published += page.count
            }
            try await group.waitForAll()
            return reading
        }
        log.event("published", ["paths": String(published), "seconds": Self.seconds(.now - started),
                                "read_seconds": Self.seconds(reading)])
    }

    /// Polls the checkpoint count until every planned path is done; republishes after a stall.
    /// `expectedRate` (paths per second, 0 if unknown) makes the first count come when the rest
    /// should be done at that rate, if that is sooner than the poll interval.
    func waitForCompletion(_ run: RunRecord, resumed: Int, expectedRate: Double = 0) async throws {
        let clock = ContinuousClock()
        var lastDone = resumed
        var lastProgress = clock.now
        var lastCount = clock.now
        var wait = Self.untilDone(remaining: run.planned - resumed, rate: expectedRate, atMost: options.pollInterval)
        var stallWait = options.stallWindow
        var lastUnconsumed: Int?
        var workerless = options.workers == 0 ? WorkerlessWatch(timeout: options.noWorkerTimeout, log: log, run: run.id) : nil
        while true {
            try await Task.sleep(for: wait)
            if lease.isLost { throw LeaseLost(name: lease.name, token: lease.token) }
            let counting = clock.now
            let done = try await db { c in try await checkpoints.count(run: run.id, on: c) }
            // The count reads every checkpoint of the run: as the run grows, ask less often (up to
            // every 5 s), so that it takes about a tenth of a server core at most (25 ms at 100,000 paths).
            wait = min(max(options.pollInterval, (clock.now - counting) * 10), max(options.pollInterval, .seconds(5)))
            progress(SyncProgress(planned: run.planned, done: done, resumed: resumed))
            metrics.setRemaining(run.planned - done, done: done)
            if done >= run.planned { return }
            // Near the end, ask again when the rest should be done at the rate since the last count
            // (not before 50 ms): the run's end is seen when it comes, not up to a wait later.
            let rate = Double(done - lastDone) / max((clock.now - lastCount).seconds, 0.001)
            lastCount = clock.now
            wait = Self.untilDone(remaining: run.planned - done, rate: rate, atMost: wait)
            if done > lastDone {
                workerless?.reset()
            } else if workerless != nil {
                try workerless!.check(live: try await db { c in try await registry.liveWorkers(on: c) })
            }
            if done > lastDone {
                lastDone = done
                lastProgress = clock.now
                stallWait = options.stallWindow
                lastUnconsumed = nil
            } else if clock.now - lastProgress >= stallWait {
                try await stalled(run, remaining: run.planned - done, lastUnconsumed: &lastUnconsumed)
                lastProgress = clock.now
                // Each stall in a row waits twice as long before the next republish, up to 8 windows.
                stallWait = min(stallWait * 2, options.stallWindow * 8)
            }
        }
    }

    /// No progress for a stall window (SPEC §6.7). Republishing helps only when the messages are
    /// gone (a broker restart, retention): while the group still has copies it has not consumed,
    /// more copies would only be more duplicates, so the coordinator waits for those instead, but
    /// only while their count moves: the same count two stalls in a row means nobody consumes
    /// them (a group that formed without partitions), and the coordinator republishes.
    func stalled(_ run: RunRecord, remaining: Int, lastUnconsumed: inout Int?) async throws {
        let live = try await db { c in try await registry.liveWorkers(on: c) }
        let unconsumed = try? await KafkaAdmin(configuration: settings.kafka).unconsumed(group: settings.group, topic: settings.topic)
        var fields = ["remaining": String(remaining), "live_workers": String(live),
                      "unconsumed": unconsumed.map(String.init) ?? "unknown"]
        if live == 0 { fields["hint"] = NoWorkers.hint }
        defer { lastUnconsumed = unconsumed }
        if let unconsumed, unconsumed > 0, live > 0, unconsumed != lastUnconsumed {
            log.event("stalled", fields.merging(["action": "wait"]) { $1 }, level: .warning)
            return
        }
        log.event("stalled", fields.merging(["action": "republish"]) { $1 }, level: .warning)
        metrics.recordRepublished(remaining)
        try await publishUntilDelivered(run)
    }

    /// When `remaining` paths should be done at `rate` paths a second (not before 50 ms), or
    /// `atMost` if that is sooner or the rate is unknown.
    static func untilDone(remaining: Int, rate: Double, atMost: Duration) -> Duration {
        guard rate > 0 else { return atMost }
        return min(atMost, max(.milliseconds(50), .seconds(Double(remaining) / rate)))
    }

    /// A duration for a log line: seconds with milliseconds.
    static func seconds(_ d: Duration) -> String { String(format: "%.3f", d.seconds) }

    /// A statement through the pool, retried while Postgres is transiently unavailable (SPEC §6.9).
    @discardableResult
    func db<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withRetry(.fleet, what: "a coordinator statement") { try await pool.withConnection(body) }
    }
}

/// Git mode's part of a sync (SPEC §6.3): planning a run, and deciding whether an open run can go on.
extension RunDriver {
    /// Plans and stores a new git run. `full` forces the full listing (the previous run was
    /// discarded). A plan too big to import directly calls `large` (which readies the producer
    /// the producer) before it is stored.
    func planGitRun(sourceID: String, root: String, full: Bool = false,
                    large: @Sendable () -> Void) async throws -> RunRecord {
        let planner = GitPlanner(schema: settings.schema)
        let filter = PathFilter(includes: options.includes, excludes: options.excludes)
        var planned = try await db { c in
            try await planner.plan(sourceID: sourceID, root: root, filter: filter, forceFull: full, on: c)
        }
        // Paths too long to be keys (SPEC §6.11): on disk, quarantined under a stand-in key; gone,
        // their quarantine row leaves.
        let (fits, longKeys, longGone) = LongPath.setAside(planned.paths, root: root)
        // Names that are not valid UTF-8 are planned and quarantined as a directory walk's are.
        planned.paths = fits + longKeys + planned.invalidNames
        // The worktree paths are keys too; a long one is found again by `git status` while it is there.
        planned.worktree.removeAll { $0.utf8.count > LongPath.maxBytes }
        for key in longKeys { log.event("quarantined", ["reason": LongPath.reason, "path": key], level: .warning) }
        let plan = planned
        if plan.full {
            try MassDeletion.check(deleting: plan.deletions, of: plan.stored, root: root, allowed: options.allowMassDelete)
        }
        if plan.paths.count > options.directMax { large() }  // the producer's start overlaps storing the plan
        for name in plan.invalidNames { log.event("quarantined", ["reason": InvalidName.reason, "path": name], level: .warning) }
        let run = try await db { c in
            try await store(.git(plan, longKeys: longKeys, longGone: longGone), sourceID: sourceID, on: c)
        }
        log.event("planned", ["run": String(run.id), "source": sourceID, "mode": SourceMode.git.rawValue,
                              "basis": plan.full ? "full_listing" : "diff", "pin": plan.pin ?? "none",
                              "listed": String(plan.listed), "planned": String(run.planned),
                              "removed": String(plan.removals.count)])
        return run
    }

    /// An open git run whose pin no longer exists (history rewritten, objects pruned) cannot
    /// advance the bookmark to it: it is ended as `aborted`, and the caller plans afresh with a
    /// full listing. Returns whether `run` may be resumed.
    func keepsPin(_ run: RunRecord, root: String) async throws -> Bool {
        guard run.mode == .git, let pin = run.pin, GitRepository.isWorkTree(root) else { return true }
        let present = try await GitRepository.withRepository(root: root) { try $0.hasCommit(pin) }
        if present { return true }
        try await db { c in try await lease.fenced(on: c) { c in try await store.abandon(run: run.id, on: c) } }
        log.event("discarded", ["run": String(run.id), "source": run.sourceID, "reason": "pin_unreachable", "pin": pin])
        return false
    }
}
