import ServiceLifecycle
import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

/// A stateless worker (SPEC §1, §6.2, §6.6, §6.9): polls batches of paths, imports each batch in
/// one Postgres transaction with its checkpoint rows, and commits the Kafka offsets only after.
public final class Worker: Sendable {
    public let id: String
    let settings: FleetSettings
    let options: WorkerOptions
    let log: Log
    /// `/metrics` and `/readyz` of `filefleet worker --http` (in-process workers share the sync's).
    public let metrics: FleetMetrics
    private let state = Mutex(WorkerState())
    private let gate = BatchGate()
    /// Fired by `requestStop` (SIGTERM through the process's service group): stop fetching.
    private let stopping = StopSignal()

    struct WorkerState {
        var counts = OutcomeCounts()
        var refused = 0
        var ready = false
        /// Partitions of its topic assigned to it now.
        var partitions = 0
        /// The consumer in use, told to stop rejoining once a stop is requested.
        var consumer: KafkaConsumer?
    }

    public init(settings: FleetSettings, options: WorkerOptions, log: Log = Log(component: "worker"),
                metrics: FleetMetrics = FleetMetrics()) {
        self.metrics = metrics
        self.id = "\(System.hostName):\(getpid()):\(UInt32.random(in: 0...UInt32.max) % 100_000)"
        self.settings = settings
        self.options = options
        self.log = log.with(["worker": id])
    }

    /// Stop fetching; the batch in flight finishes and commits, then `run` returns.
    public func requestStop() {
        let first = stopping.fire()
        let consumer = state.withLock { $0.consumer }
        if first { log.event("drain_started") }
        // A peer that leaves first rebalances the group: joining it again now would only delay
        // this consumer's close (see `KafkaConsumer.stopRejoining`).
        consumer?.stopRejoining()
    }

    var stopRequested: Bool { stopping.isFired }
    public var counts: OutcomeCounts { state.withLock { $0.counts } }
    /// Messages refused: undecodable, forged, or for an unknown run.
    public var refused: Int { state.withLock { $0.refused } }
    public var isReady: Bool { state.withLock { $0.ready } }
    /// Whether the group has given it partitions (and not taken them back).
    public var hasPartitions: Bool { state.withLock { $0.partitions > 0 } }

    /// Runs until `requestStop` or the service group's graceful shutdown, then drains: the batch
    /// in flight finishes and commits, and the worker leaves its group. Throws `DrainTimeout` when
    /// that batch could not finish within `options.drainTimeout` (it was rolled back; its paths
    /// come again).
    public func run() async throws {
        try await withGracefulShutdownHandler {
            let pool = PostgresPool(url: settings.postgresURL, maxConnections: options.poolSize,
                                    acquireTimeout: .seconds(30), idleTimeout: Self.idleTimeout)
            do {
                try await serve(pool)
                await pool.close()
            } catch {
                await pool.close()
                throw error
            }
        } onGracefulShutdown: {
            self.requestStop()
        }
    }

    private func serve(_ pool: PostgresPool) async throws {
        _ = try await withRetry(.fleet, what: "the schema migration") { try await settings.schema.migrate(pool) }
        try await withRetry(.fleet, what: "the worker's registration") { try await register(pool) }
        try await waitForTopic()
        let importer = BatchImporter(settings: settings, options: options, worker: id, pool: pool, log: log,
                                     metrics: metrics)
        do {
            try await serve(importer: importer, pool: pool)
        } catch {
            await markStopped(pool)
            throw error
        }
        await markStopped(pool)
        log.event("marked_stopped", level: .debug)
    }

    private func serve(importer: BatchImporter, pool: PostgresPool) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.heartbeat(pool) }
            defer { group.cancelAll() }
            var consecutiveFailures = 0
            var unassigned = UnassignedWatch(after: max(.seconds(10), settings.kafka.sessionTimeout * 2))
            while !stopRequested {
                let consumer = try KafkaConsumer(configuration: settings.kafka, group: settings.group,
                                                 topics: [settings.topic],
                                                 onRevoke: { [gate] _ in await gate.waitUntilIdle() })
                state.withLock { s in
                    s.ready = true
                    s.consumer = consumer
                }
                // Asked after the consumer is published: a stop requested in between sees it.
                if stopRequested { consumer.stopRejoining() }
                metrics.setReady("worker \(id)")
                let events = Task { await self.logEvents(consumer.events) }
                defer {
                    events.cancel()
                    state.withLock { $0.consumer = nil }
                }
                do {
                    try await consume(consumer, importer: importer, pool: pool,
                                      consecutiveFailures: &consecutiveFailures, unassigned: &unassigned)
                    log.event("consumer_closing", level: .debug)
                    await consumer.close()
                    log.event("consumer_closed", level: .debug)
                } catch let rejoin as Rejoin {
                    // Same readiness: the worker is healthy, its group membership is not.
                    log.event("rejoining", ["reason": rejoin.description])
                    await consumer.close()
                    try await waitForTopic()
                } catch let giveUp as GiveUp {
                    // Hand the partitions to workers that can make progress, rejoin later (SPEC §6.9).
                    state.withLock { $0.ready = false }
                    metrics.setReady("worker \(id)", notReady: "paused: \(giveUp.description)")
                    log.event("paused", ["reason": giveUp.description, "resume_in_seconds": String(Int(giveUp.backoff.seconds))])
                    await consumer.close()
                    try await stopping.sleep(for: giveUp.backoff)
                    if !stopRequested { log.event("resumed", ["after_seconds": String(Int(giveUp.backoff.seconds))]) }
                } catch {
                    state.withLock { $0.ready = false }
                    metrics.setReady("worker \(id)", notReady: "stopped: \(error)")
                    await consumer.close()
                    throw error
                }
            }
        }
    }

    private struct GiveUp: Error, CustomStringConvertible {
        let description: String
        let backoff: Duration
    }

    /// The consumer sat without partitions although this worker should have some: leave the
    /// group and join it again.
    private struct Rejoin: Error, CustomStringConvertible {
        let description: String
    }

    /// A batch polled and prepared while the one before it was written.
    private typealias ReadAhead = Task<(polled: [KafkaMessage], batch: PreparedBatch?), any Error>

    private func consume(_ consumer: KafkaConsumer, importer: BatchImporter, pool: PostgresPool,
                         consecutiveFailures: inout Int, unassigned: inout UnassignedWatch) async throws {
        var lagReported = ContinuousClock.now - .seconds(1)
        var readAhead: ReadAhead?
        defer {
            readAhead?.cancel()
            metrics.setLag(nil, worker: id)
        }
        while !stopRequested {
            if ContinuousClock.now - lagReported >= .seconds(1) {
                metrics.setLag(consumer.lag, worker: id)
                lagReported = .now
            }
            // The gate closes only once a batch is in hand: a revocation runs on the consumer's poll
            // thread, which cannot serve a poll meanwhile, so waiting for a poll would deadlock
            // until the revocation timeout.
            let polled: [KafkaMessage]
            var prepared: PreparedBatch?
            if let ahead = readAhead {
                readAhead = nil
                (polled, prepared) = try await ahead.value
            } else {
                polled = try await consumer.poll(maxMessages: options.batchSize, timeout: options.batchWait)
            }
            if unassigned.due(assigned: !consumer.assignment.isEmpty), try await shouldRejoin(pool) {
                throw Rejoin(description: "no partitions while the topic is missing or every live worker should have some")
            }
            guard !polled.isEmpty else { continue }
            gate.begin()
            defer { gate.end() }
            // Partitions revoked between the poll and the gate go to their next owner: the consumer
            // stops listing them before `onRevoke` waits for this gate, so this read cannot miss one.
            let owned = consumer.assignment
            let messages = polled.filter { owned.contains($0.topicPartition) }
            guard !messages.isEmpty else { continue }
            if messages.count < polled.count { prepared = nil }  // read ahead with paths that moved on
            while true {
                do {
                    let batchStart = ContinuousClock.now
                    let deadline = batchStart + options.batchTimeout
                    let batch: PreparedBatch
                    if let readAlready = prepared {
                        batch = readAlready
                        prepared = nil  // a retry reads the files again
                    } else {
                        batch = try await bounded(messages, until: deadline) { try await importer.prepare(messages) }
                    }
                    // The next batch is polled and read while this one is written: reading and
                    // writing take about as long, and the server and the readers overlap.
                    if readAhead == nil && !stopRequested { readAhead = Self.readAhead(consumer, importer, options) }
                    let result = try await bounded(messages, until: deadline) { try await importer.write(batch) }
                    metrics.recordBatch(result.counts, refused: result.refused, duration: .now - batchStart)
                    state.withLock {
                        $0.counts.imported += result.counts.imported
                        $0.counts.unchanged += result.counts.unchanged
                        $0.counts.deleted += result.counts.deleted
                        $0.counts.failed += result.counts.failed
                        $0.refused += result.refused
                        $0.ready = true
                    }
                    metrics.setReady("worker \(id)")
                    consecutiveFailures = 0
                    break
                } catch is DrainTimeout {
                    throw DrainTimeout()
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    // Transient (SPEC §6.9), past its deadline (SPEC §6.12) or not, the batch did
                    // not commit: its offsets stay uncommitted and it is retried. A worker whose
                    // batches keep failing hands its partitions on, but only to workers that are
                    // making progress: when the database is down for everyone, leaving the group
                    // would only make every worker rejoin at once when it is back.
                    consecutiveFailures += 1
                    metrics.recordRetry(error)
                    let timedOut = error is BatchTimeout
                    log.event(timedOut ? "batch_timeout" : "batch_failed",
                              ["error": "\(error)", "consecutive": String(consecutiveFailures)], level: .warning)
                    if timedOut || consecutiveFailures >= options.failuresBeforePause {
                        state.withLock { $0.ready = false }
                        metrics.setReady("worker \(id)", notReady: "\(consecutiveFailures) batches in a row failed: \(error)")
                        if await othersMakeProgress(pool) {
                            throw GiveUp(description: "\(consecutiveFailures) consecutive batches failed, others make progress: \(error)",
                                         backoff: .seconds(min(30, 2 * consecutiveFailures)))
                        }
                        log.event("retrying_in_place", ["reason": "no other worker is making progress",
                                                        "consecutive": String(consecutiveFailures)])
                    }
                    try await Task.sleep(for: .milliseconds(min(5_000, 200 * consecutiveFailures)))
                }
            }
            // Only now, after the transaction committed. A commit that fails (the partition moved
            // meanwhile) loses nothing: the next owner gets the paths again and skips them (SPEC §6.2).
            do {
                try await consumer.commit(messages)
                metrics.setReady("kafka")
            } catch let error as KafkaError {
                log.event("commit_failed", ["error": "\(error)", "messages": String(messages.count)], level: .warning)
            }
        }
    }

    /// Polls the next batch and prepares it. A failed preparation (the database away) is left to
    /// the batch's own attempt, after the gate: only the poll's errors end the read-ahead.
    private static func readAhead(_ consumer: KafkaConsumer, _ importer: BatchImporter, _ options: WorkerOptions) -> ReadAhead {
        Task {
            let polled = try await consumer.poll(maxMessages: options.batchSize, timeout: options.batchWait)
            guard !polled.isEmpty else { return (polled, nil) }
            let owned = consumer.assignment
            let messages = polled.filter { owned.contains($0.topicPartition) }
            return (polled, messages.count == polled.count ? try? await importer.prepare(messages) : nil)
        }
    }

    /// Runs a step of the batch under its deadline (`options.batchTimeout` from its start, else
    /// `BatchTimeout`) and, once a stop is requested, `drainTimeout` (else `DrainTimeout`). Either
    /// cancels it, which rolls it back. `metrics.stuck` reports a batch whose cancellation does
    /// not end it either.
    private func bounded<T: Sendable>(_ messages: [KafkaMessage], until deadline: ContinuousClock.Instant,
                                      _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        metrics.began(id, "a batch", bound: options.stuckBound)
        defer { metrics.ended(id) }
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(until: deadline)
                throw BatchTimeout(seconds: self.options.batchTimeout.seconds,
                                   paths: messages.compactMap { PathMessage.decode($0.value)?.path })
            }
            group.addTask {
                await self.stopping.wait()
                try await Task.sleep(for: self.options.drainTimeout)
                throw DrainTimeout()
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// True when another worker committed a batch within the live-worker window. False when the
    /// database cannot say (it is down, or this worker is cut off from it).
    private func othersMakeProgress(_ pool: PostgresPool) async -> Bool {
        let answer = await tolerating("the check whether other workers make progress", pool) { [registry, id] c in
            try await registry.othersMakeProgress(besides: id, on: c)
        }
        return answer ?? false
    }

    /// A group that formed while its topic was missing (a broker restart loses it) is assigned
    /// nothing, and the group's leader only notices the topic again at its next metadata refresh:
    /// a worker without partitions rejoins when the topic is gone, or when the live workers are no
    /// more than the partitions (so it should have some). Surplus workers stay.
    ///
    /// One worker of a group at a time: it takes the group's rejoin slot, a lease that is never
    /// released and lapses after twice the session timeout (10 s at least). Workers that lost their
    /// partitions together would otherwise all leave together, and members that leave a group
    /// together can leave it stuck in rebalance for good (Tansu does, SPEC §9.1; seen after a
    /// broker restart: both workers of a fleet left within 0.1 s, and neither got a partition
    /// again). One member's rejoin rebalances the others anyway.
    private func shouldRejoin(_ pool: PostgresPool) async throws -> Bool {
        let admin = try KafkaAdmin(configuration: settings.kafka)
        if let partitions = try? await admin.partitionCount(settings.topic) {
            guard let live = await tolerating("the count of live workers", pool, { [registry] c in try await registry.liveWorkers(on: c) }),
                  live <= partitions else { return false }
        }
        let spacing = max(Duration.seconds(10), settings.kafka.sessionTimeout * 2)
        let slot = LeaseStore(schema: settings.schema)
        let taken = try? await pool.withConnection { c in  // a failure defers the rejoin, logged below
            try await slot.acquire("rejoin:" + settings.group, holder: id,
                                   timing: LeaseTiming(heartbeat: spacing, ttl: spacing, grace: .zero), on: c)
        }
        if taken == nil { log.event("rejoin_deferred", ["reason": "another worker of the group rejoined within \(Int(spacing.seconds)) s"]) }
        return taken != nil
    }

    /// Returns once the topic exists (or a stop was requested), creating it if this worker comes
    /// first: a group that forms before its topic exists is assigned nothing, and a broker may
    /// keep that assignment when the members rejoin (Tansu does). Without the right to create
    /// topics the worker waits for a coordinator that has it; with the broker down, for the broker.
    private func waitForTopic() async throws {
        let admin = try KafkaAdmin(configuration: settings.kafka)  // a bad option fails here, at once
        var attempt = 0
        while !stopRequested {
            do {
                do {
                    try await admin.createTopic(settings.topic, partitions: settings.partitions, timeout: .seconds(10))
                    return
                } catch let error as KafkaError where !error.isRetriable {
                    // Refused (no right to create topics): fine if someone else created it.
                    if try await admin.partitionCount(settings.topic) != nil { return }
                    throw error
                }
            } catch {
                attempt += 1
                log.event("waiting_for_topic", ["topic": settings.topic, "attempt": String(attempt), "error": "\(error)"])
                try await stopping.sleep(for: .seconds(min(10, 2 * attempt)))
            }
        }
    }

    /// Group membership changes and client errors, one line each: what an operator reads first
    /// when a worker sits idle while work waits.
    private func logEvents(_ events: AsyncStream<KafkaConsumerEvent>) async {
        for await event in events {
            switch event {
            case .assigned(let partitions):
                state.withLock { $0.partitions = partitions.count }
                metrics.setReady("kafka")  // an assignment needs the group coordinator: reachable
                log.event("assigned", ["partitions": Self.partitionList(partitions)])
            case .revoked(let partitions):
                state.withLock { $0.partitions = 0 }
                log.event("revoked", ["partitions": Self.partitionList(partitions)])
            case .lost(let partitions):
                state.withLock { $0.partitions = 0 }
                log.event("lost", ["partitions": Self.partitionList(partitions)])
            case .error(let error):
                if error.code == .allBrokersDown { metrics.setReady("kafka", notReady: "no broker reachable: \(error)") }
                log.event("kafka_error", ["error": "\(error)"], level: .warning)
            }
        }
    }

    /// `0,3,5` (one topic per worker, so the partition numbers say it all); `none` when empty.
    private static func partitionList(_ partitions: [KafkaTopicPartition]) -> String {
        partitions.isEmpty ? "none" : partitions.map(\.partition).sorted().map(String.init).joined(separator: ",")
    }

    private var registry: WorkerRegistry { WorkerRegistry(schema: settings.schema) }

    private func register(_ pool: PostgresPool) async throws {
        try await pool.withConnection { [registry, id] c in
            try await registry.register(id, host: System.hostName, pid: Int(getpid()), on: c)
        }
    }

    private func heartbeat(_ pool: PostgresPool) async throws {
        while true {
            try await Task.sleep(for: Self.heartbeatInterval)
            let (done, ready) = state.withLock { ($0.counts.total, $0.ready) }
            let beat: Void? = await tolerating("the worker heartbeat", retryIn: Self.heartbeatInterval, pool) { [registry, id] c in
                try await registry.heartbeat(id, done: done, ready: ready, on: c)
            }
            if beat != nil { metrics.workerHeartbeat() }
        }
    }

    private func markStopped(_ pool: PostgresPool) async {
        _ = await tolerating("marking the worker stopped", pool) { [registry, id] c in
            try await registry.markStopped(id, on: c)
        }
    }

    /// A statement the worker can do without for now: a failure is logged, never silent, as a
    /// retry of `what` when it comes again by itself (`retryIn`, the next heartbeat), else as
    /// given up; either way the caller goes on with nil.
    private func tolerating<T: Sendable>(_ what: String, retryIn next: Duration? = nil, _ pool: PostgresPool,
                                         _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async -> T? {
        do {
            return try await pool.withConnection(body)
        } catch {
            metrics.recordRetry(error)
            var fields = ["what": what, "class": FleetMetrics.retryClass(error), "error": "\(error)"]
            if let next { fields["delay_ms"] = String(Int(next.seconds * 1000)) }
            log.event(next == nil ? "store_call_failed" : "retrying", fields, level: .warning)
            return nil
        }
    }

    /// The heartbeat is rarer than the idle timeout, so that an idle worker gives its connection
    /// back between beats and scarce server slots go round (SPEC §6.9).
    static let heartbeatInterval: Duration = .seconds(5)
    static let idleTimeout: Duration = .seconds(2)
}
