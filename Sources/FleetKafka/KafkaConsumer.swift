internal import CRdKafka
import Synchronization
import Foundation

public enum KafkaConsumerEvent: Sendable, Equatable {
    /// These partitions now belong to this member (the full list under the eager protocol).
    case assigned([KafkaTopicPartition])
    /// These partitions are being taken away; `onRevoke` ran (or timed out) before this event.
    case revoked([KafkaTopicPartition])
    /// The member was thrown out of the group (e.g. session timeout): commits for these fail.
    case lost([KafkaTopicPartition])
    /// A per-message or client error; the consumer goes on.
    case error(KafkaError)
}

/// A group consumer with manual commits: nothing is committed unless `commit` is called.
///
/// A dedicated thread polls librdkafka, buffering messages for `poll`, so a busy application is
/// never kicked from the group. While `configuration.consumerBufferLimit` messages are waiting, it
/// stops taking more (librdkafka's own queue fills and its fetching stops, nothing is lost); if they
/// are still waiting after `holdBack`, it pauses every partition and polls again, so that
/// rebalances are served while the application is stalled. Rebalances run on that thread: before revoked partitions move,
/// `onRevoke` is awaited (up to `configuration.revocationTimeout`) so the application can finish
/// and commit their in-flight messages; their buffered, not yet polled messages are dropped
/// (they are redelivered from the committed offset to the next owner).
public final class KafkaConsumer: Sendable {
    public typealias RevocationHandler = @Sendable ([KafkaTopicPartition]) async -> Void

    private let core: ConsumerCore
    private let handle: ClientHandle
    /// Assignments, revocations and errors. Observing it is optional (it keeps the newest 1000).
    public let events: AsyncStream<KafkaConsumerEvent>

    public init(configuration: KafkaConfiguration, group: String, topics: [String],
                onRevoke: RevocationHandler? = nil) throws(KafkaError) {
        try KafkaError.checkSupportedLibrary()
        let (events, continuation) = AsyncStream.makeStream(of: KafkaConsumerEvent.self, bufferingPolicy: .bufferingNewest(1000))
        self.events = events
        let core = ConsumerCore(configuration: configuration, onRevoke: onRevoke, events: continuation)
        self.core = core
        let conf = try configuration.makeConf(configuration.consumerProperties(group: group), for: .consumer)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(core).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, opaque in
            guard let rk, let opaque else { return }
            Unmanaged<ConsumerCore>.fromOpaque(opaque).takeUnretainedValue().rebalance(rk, err, partitions)
        }
        rd_kafka_conf_set_error_cb(conf) { rk, err, reason, opaque in
            guard let rk, let opaque else { return }
            let core = Unmanaged<ConsumerCore>.fromOpaque(opaque).takeUnretainedValue()
            core.clientError(rk, rd_kafka_resp_err_t(err), reason.map { String(cString: $0) } ?? "")
        }
        let rk = try makeClient(RD_KAFKA_CONSUMER, conf)
        rd_kafka_poll_set_consumer(rk)
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let err = rd_kafka_subscribe(rk, list)
        let handle = ClientHandle(rk)
        self.handle = handle
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            startThread(name: "kafka-consumer-destroy") { handle.retire(); rd_kafka_destroy(handle.owned); continuation.finish() }
            throw KafkaError(err, message: "subscribe to \(topics): \(String(cString: rd_kafka_err2str(err)))")
        }
        startThread(name: "kafka-consumer") { core.run(handle) }
    }

    deinit {
        core.requestClose()
    }

    /// The partitions this member owns now. A partition being revoked is left out from the moment
    /// its revocation starts, so work that begins while `onRevoke` runs does not take it up; work
    /// already in flight can still commit it until `onRevoke` returns.
    public var assignment: Set<KafkaTopicPartition> { core.assignment }

    /// Messages of the owned partitions not yet returned by `poll`: each partition's high
    /// watermark (as of the last fetch; no request is made) minus what the poll thread has read,
    /// plus what waits in the buffer. Partitions not fetched from yet are left out; nil when
    /// none is known. The local test broker reports a wrong high watermark (SPEC §9.1), so there
    /// it under-counts.
    public var lag: Int? {
        try? handle.use { rk throws(KafkaError) in core.lag(rk) }
    }

    /// Up to `maxMessages` messages: returns as soon as that many are buffered, else after
    /// `timeout` with what there is (possibly nothing). One `poll` at a time.
    public func poll(maxMessages: Int, timeout: Duration) async throws -> [KafkaMessage] {
        try await core.poll(maxMessages: max(1, maxMessages), timeout: timeout)
    }

    /// Commits, for each partition, the offset after the last of `messages` (synchronously).
    public func commit(_ messages: [KafkaMessage]) async throws {
        var offsets: [KafkaTopicPartition: Int64] = [:]
        for m in messages { offsets[m.topicPartition] = max(offsets[m.topicPartition] ?? 0, m.offset + 1) }
        try await commit(offsets: offsets)
    }

    /// Commits `offsets` (each the next offset to consume) synchronously. Only partitions this
    /// member still owns are committed; if some are not owned (moved in a rebalance), the owned
    /// ones are committed and a `.state` error names the others.
    public func commit(offsets: [KafkaTopicPartition: Int64]) async throws {
        let owned = core.committable
        let mine = offsets.filter { owned.contains($0.key) }
        if !mine.isEmpty {
            let handle = self.handle
            let result: Result<Void, KafkaError> = await runBlocking(name: "kafka-commit") {
                Result { () throws(KafkaError) in
                    try handle.use { rk throws(KafkaError) in
                        let list = PartitionList.make(offsets: mine)
                        defer { rd_kafka_topic_partition_list_destroy(list) }
                        try KafkaError.check(rd_kafka_commit(rk, list, 0), "commit")
                        if let error = PartitionList.firstError(list, "commit") { throw error }
                    }
                }
            }
            try result.get()
        }
        if mine.count < offsets.count {
            let others = offsets.keys.filter { !owned.contains($0) }.map(\.description).sorted()
            throw KafkaError(code: .state, message: "not committed, no longer assigned: \(others.joined(separator: ", "))")
        }
    }

    /// The group's committed offsets (next offset to consume; negative when none).
    public func committed(_ partitions: [KafkaTopicPartition], timeout: Duration = .seconds(10)) async throws -> [KafkaTopicPartition: Int64] {
        let handle = self.handle
        let result: Result<[KafkaTopicPartition: Int64], KafkaError> = await runBlocking(name: "kafka-committed") {
            Result { () throws(KafkaError) in
                try handle.use { rk throws(KafkaError) in
                    let list = PartitionList.make(partitions)
                    defer { rd_kafka_topic_partition_list_destroy(list) }
                    try KafkaError.check(rd_kafka_committed(rk, list, Int32(clamping: KafkaConfiguration.milliseconds(timeout))), "committed")
                    if let error = PartitionList.firstError(list, "committed") { throw error }
                    return Dictionary(PartitionList.elements(list).map { ($0.0, $0.offset) }, uniquingKeysWith: { a, _ in a })
                }
            }
        }
        return try result.get()
    }

    /// Stops fetching `partitions`; their buffered messages are held back until `resume`.
    public func pause(_ partitions: [KafkaTopicPartition]) throws {
        try core.setPaused(partitions, paused: true, handle: handle)
    }

    public func resume(_ partitions: [KafkaTopicPartition]) throws {
        try core.setPaused(partitions, paused: false, handle: handle)
    }

    /// For a consumer about to be closed: a rebalance that revokes its partitions from now on makes
    /// it leave the group instead of joining it again. Without this, a member whose peer left the
    /// group just before it closes can have a JoinGroup in flight when `close` sends LeaveGroup;
    /// a broker answers requests on a connection in order, and Tansu holds a follower's JoinGroup
    /// for 3 s, so the close waited that long.
    public func stopRejoining() {
        core.stopRejoining()
    }

    /// Leaves the group at once (its partitions are revoked, `onRevoke` runs) and destroys the client.
    public func close() async {
        core.requestClose()
        await core.closed.wait()
    }
}

/// The consumer's state, shared by its poll thread, librdkafka's callbacks and the API.
final class ConsumerCore: Sendable {
    private struct Waiter {
        var id: UInt64
        var maxMessages: Int
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<[KafkaMessage], any Error>
    }

    private struct State {
        var buffer: [KafkaMessage] = []
        var head = 0
        var waiter: Waiter?
        var nextWaiterID: UInt64 = 0
        var assignment: Set<KafkaTopicPartition> = []
        /// Still assigned, but `onRevoke` is running for them.
        var revoking: Set<KafkaTopicPartition> = []
        var paused: Set<KafkaTopicPartition> = []
        var flowPaused = false
        /// Since when the buffer has been full (the poll thread takes nothing more meanwhile).
        var fullSince: ContinuousClock.Instant?
        var closing = false
        /// The poll thread is in `rd_kafka_consumer_close`: it leaves the group itself.
        var closeStarted = false
        /// Leave the group at the next revocation instead of rejoining it.
        var leaving = false
        var fatal: KafkaError?

        var available: Int {
            if paused.isEmpty { return buffer.count - head }
            return buffer[head...].count { !paused.contains($0.topicPartition) }
        }

        mutating func take(_ n: Int) -> [KafkaMessage] {
            var out: [KafkaMessage] = []
            if paused.isEmpty {
                let end = min(buffer.count, head + n)
                out = Array(buffer[head..<end])
                head = end
            } else {
                var kept: [KafkaMessage] = []
                for m in buffer[head...] {
                    if out.count < n && !paused.contains(m.topicPartition) { out.append(m) } else { kept.append(m) }
                }
                buffer = kept
                head = 0
            }
            if head > 4096 && head * 2 > buffer.count {
                buffer.removeFirst(head)
                head = 0
            }
            return out
        }

        mutating func drop(_ partitions: Set<KafkaTopicPartition>) {
            buffer = buffer[head...].filter { !partitions.contains($0.topicPartition) }
            head = 0
        }
    }

    let configuration: KafkaConfiguration
    private let onRevoke: KafkaConsumer.RevocationHandler?
    private let eventsContinuation: AsyncStream<KafkaConsumerEvent>.Continuation
    private let state = Mutex(State())
    let closed = Latch()
    /// Messages handed over from the poll thread per lock.
    private static let chunk = 1000
    /// How long a full buffer holds the poll thread back before it pauses fetching and polls again.
    static let holdBack = Duration.seconds(2)
    /// Signalled when `poll` takes messages: a held-back poll thread looks again.
    private let room = DispatchSemaphore(value: 0)

    init(configuration: KafkaConfiguration, onRevoke: KafkaConsumer.RevocationHandler?,
         events: AsyncStream<KafkaConsumerEvent>.Continuation) {
        self.configuration = configuration
        self.onRevoke = onRevoke
        self.eventsContinuation = events
    }

    var assignment: Set<KafkaTopicPartition> { state.withLock { $0.assignment.subtracting($0.revoking) } }
    var committable: Set<KafkaTopicPartition> { state.withLock { $0.assignment } }

    func lag(_ rk: OpaquePointer) -> Int? {
        let (owned, buffered) = state.withLock { s in
            (s.assignment, Dictionary(s.buffer[s.head...].map { ($0.topicPartition, 1) }, uniquingKeysWith: +))
        }
        guard !owned.isEmpty else { return nil }
        let list = PartitionList.make(owned)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        guard rd_kafka_position(rk, list) == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        var total: Int?
        for (partition, position, _) in PartitionList.elements(list) where position >= 0 {
            var low: Int64 = 0, high: Int64 = 0
            guard rd_kafka_get_watermark_offsets(rk, partition.topic, partition.partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR,
                  high >= 0 else { continue }
            total = (total ?? 0) + Int(max(0, high - position)) + buffered[partition, default: 0]
        }
        return total
    }

    func requestClose() {
        state.withLock { $0.closing = true }
    }

    func stopRejoining() {
        state.withLock { $0.leaving = true }
    }

    // MARK: API side

    func poll(maxMessages: Int, timeout: Duration) async throws -> [KafkaMessage] {
        let id = state.withLock { s in s.nextWaiterID += 1; return s.nextWaiterID }
        let deadline = ContinuousClock.now + timeout
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<[KafkaMessage], any Error>) in
                let immediate: Result<[KafkaMessage], any Error>? = state.withLock { s in
                    if let fatal = s.fatal { return .failure(fatal) }
                    if s.closing { return .failure(KafkaError(code: .destroyed, message: "consumer is closed")) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if s.waiter != nil { return .failure(KafkaError(code: .state, message: "poll is already in progress")) }
                    if s.available >= maxMessages || timeout <= .zero { return .success(s.take(maxMessages)) }
                    s.waiter = Waiter(id: id, maxMessages: maxMessages, deadline: deadline, continuation: c)
                    return nil
                }
                if let immediate {
                    c.resume(with: immediate)
                    room.signal()
                }
            }
        } onCancel: {
            let waiter = state.withLock { s -> Waiter? in
                guard let w = s.waiter, w.id == id else { return nil }
                s.waiter = nil
                return w
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    func setPaused(_ partitions: [KafkaTopicPartition], paused: Bool, handle: ClientHandle) throws {
        try handle.use { rk throws(KafkaError) in
            try state.withLock { s throws(KafkaError) in
                if paused { s.paused.formUnion(partitions) } else { s.paused.subtract(partitions) }
                // While flow control holds everything, resuming only updates the bookkeeping.
                if !paused && s.flowPaused { return }
                let list = PartitionList.make(partitions)
                defer { rd_kafka_topic_partition_list_destroy(list) }
                let err = paused ? rd_kafka_pause_partitions(rk, list) : rd_kafka_resume_partitions(rk, list)
                try KafkaError.check(err, paused ? "pause" : "resume")
            }
        }
    }
}

// MARK: The poll thread

extension ConsumerCore {
    func run(_ handle: ClientHandle) {
        let rk = handle.owned
        var fetched: [KafkaMessage] = []
        fetched.reserveCapacity(Self.chunk)
        while true {
            let timeoutMs: Int32? = state.withLock { s in
                if s.closing { return nil }
                if flowControl(&s, rk) { return -1 }
                guard let w = s.waiter else { return 100 }
                let left = ContinuousClock.now.duration(to: w.deadline)
                return Int32(clamping: max(0, min(100, KafkaConfiguration.milliseconds(left) + 1)))
            }
            guard let timeoutMs else { break }
            if timeoutMs < 0 {  // held back: wait for room (or 50 ms, to see a close or the hold-back's end)
                _ = room.wait(timeout: .now() + .milliseconds(50))
                continue
            }

            var next = rd_kafka_consumer_poll(rk, timeoutMs)
            while let m = next {
                if m.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    let topic = m.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
                    fetched.append(KafkaMessage(copying: m, topic: topic))
                } else {
                    messageError(m)
                }
                rd_kafka_message_destroy(m)
                if fetched.count >= Self.chunk { break }
                next = rd_kafka_consumer_poll(rk, 0)
            }

            let ready: (CheckedContinuation<[KafkaMessage], any Error>, [KafkaMessage])? = state.withLock { s in
                s.buffer.append(contentsOf: fetched)
                flowControl(&s, rk)
                guard let w = s.waiter else { return nil }
                let available = s.available
                guard available >= w.maxMessages || ContinuousClock.now >= w.deadline
                else { return nil }
                s.waiter = nil
                return (w.continuation, s.take(w.maxMessages))
            }
            fetched.removeAll(keepingCapacity: true)
            if let (c, messages) = ready { c.resume(returning: messages) }
        }

        // Leave the group: revokes the assignment (the rebalance callback runs here), then destroy.
        state.withLock { $0.closeStarted = true }
        rd_kafka_consumer_close(rk)
        let waiter = state.withLock { s in
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.continuation.resume(returning: [])
        handle.retire()
        rd_kafka_destroy(rk)
        eventsContinuation.finish()
        closed.set()
    }

    /// While the buffer is full, takes nothing more from librdkafka (true: hold back): its queue
    /// fills and it stops fetching by itself, and picks up where it was as soon as there is room.
    /// Full for `holdBack`, the application is stalled: every partition is paused and polling goes
    /// on (rebalances are served), until the buffer is down to half. Pausing is not the way for
    /// every full buffer: librdkafka drops a paused partition's fetched messages, and its broker
    /// thread looked at resumed partitions again only up to a second later (0.87 s measured),
    /// which starved the workers ten times in a 100,000-path run. Called under the lock so that
    /// pause and resume calls keep their order.
    private func flowControl(_ s: inout State, _ rk: OpaquePointer) -> Bool {
        let limit = configuration.consumerBufferLimit
        guard s.available >= limit else {
            s.fullSince = nil
            if s.flowPaused && s.available <= limit / 2 {
                s.flowPaused = false
                setFetching(rk, Array(s.assignment.subtracting(s.paused)), paused: false)
            }
            return false
        }
        guard !s.flowPaused else { return false }
        let now = ContinuousClock.now
        let since = s.fullSince ?? now
        s.fullSince = since
        guard now - since >= Self.holdBack else { return true }
        s.flowPaused = true
        setFetching(rk, Array(s.assignment), paused: true)
        return false
    }

    private func setFetching(_ rk: OpaquePointer, _ partitions: [KafkaTopicPartition], paused: Bool) {
        guard !partitions.isEmpty else { return }
        let list = PartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        _ = paused ? rd_kafka_pause_partitions(rk, list) : rd_kafka_resume_partitions(rk, list)
    }

    private func messageError(_ m: UnsafeMutablePointer<rd_kafka_message_t>) {
        var text = String(cString: rd_kafka_err2str(m.pointee.err))
        if let topic = m.pointee.rkt { text = "\(String(cString: rd_kafka_topic_name(topic)))[\(m.pointee.partition)]: " + text }
        if let payload = m.pointee.payload, m.pointee.len > 0 {
            // For errors librdkafka puts a message string in the payload.
            text += ": " + String(decoding: UnsafeRawBufferPointer(start: payload, count: m.pointee.len), as: UTF8.self)
        }
        eventsContinuation.yield(.error(KafkaError(m.pointee.err, message: text)))
    }

    func clientError(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t, _ reason: String) {
        var error = KafkaError(err, message: reason)
        if err == RD_KAFKA_RESP_ERR__FATAL {
            var errstr = [CChar](repeating: 0, count: 512)
            let code = rd_kafka_fatal_error(rk, &errstr, errstr.count)
            error = KafkaError(code: .init(rawValue: code.rawValue), message: text(errstr), isFatal: true)
            let waiter = state.withLock { s in
                s.fatal = error
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.continuation.resume(throwing: error)
        }
        eventsContinuation.yield(.error(error))
    }

    func rebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        let partitions = PartitionList.partitions(list)
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, list) {
                    eventsContinuation.yield(.error(KafkaError(consuming: error)))
                }
            } else if let assignErr = Optional(rd_kafka_assign(rk, list)), assignErr != RD_KAFKA_RESP_ERR_NO_ERROR {
                eventsContinuation.yield(.error(KafkaError(assignErr, message: "assign: \(String(cString: rd_kafka_err2str(assignErr)))")))
            }
            state.withLock { s in
                if cooperative { s.assignment.formUnion(partitions) } else { s.assignment = Set(partitions) }
                if s.flowPaused { setFetching(rk, partitions, paused: true) }
            }
            eventsContinuation.yield(.assigned(partitions))

        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let revoked = Set(partitions)
            let lost = rd_kafka_assignment_lost(rk) != 0
            // Unsubscribing before the unassign below: once the unassign completes, librdkafka
            // leaves the group instead of sending JoinGroup. Also when a close is asked for but the
            // poll thread has not reached `rd_kafka_consumer_close` yet: a peer that left just
            // before made this rebalance, and a JoinGroup sent now holds the close until the
            // broker answers it (2 s on the embedded broker, about one sync in ten).
            if state.withLock({ ($0.leaving || $0.closing) && !$0.closeStarted }) { rd_kafka_unsubscribe(rk) }
            state.withLock { s in
                s.drop(revoked)
                s.revoking = revoked
                // Not-yet-polled messages of these partitions go to the next owner.
                if lost { s.assignment.subtract(revoked) }
            }
            if !lost, let onRevoke, !partitions.isEmpty {
                awaitRevocation(onRevoke, partitions)
            }
            state.withLock { s in
                s.assignment.subtract(revoked)
                s.revoking = []
                // A paused partition stays paused inside librdkafka after it is unassigned.
                let held = s.flowPaused ? revoked : revoked.intersection(s.paused)
                s.paused.subtract(revoked)
                setFetching(rk, Array(held), paused: false)
            }
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, list) {
                    eventsContinuation.yield(.error(KafkaError(consuming: error)))
                }
            } else {
                rd_kafka_assign(rk, nil)
            }
            eventsContinuation.yield(lost ? .lost(partitions) : .revoked(partitions))

        default:
            rd_kafka_assign(rk, nil)
            state.withLock { $0.assignment = [] }
            eventsContinuation.yield(.error(KafkaError(err, message: "rebalance: \(String(cString: rd_kafka_err2str(err)))")))
        }
    }

    /// Blocks the poll thread (never a pool thread) until `onRevoke` returns or the timeout passes.
    private func awaitRevocation(_ onRevoke: @escaping KafkaConsumer.RevocationHandler, _ partitions: [KafkaTopicPartition]) {
        let done = DispatchSemaphore(value: 0)
        let task = Task {
            await onRevoke(partitions)
            done.signal()
        }
        let ms = Int(KafkaConfiguration.milliseconds(configuration.revocationTimeout))
        if done.wait(timeout: .now() + .milliseconds(ms)) == .timedOut {
            task.cancel()
            eventsContinuation.yield(.error(KafkaError(code: .timedOut, message:
                "onRevoke did not finish within \(configuration.revocationTimeout); giving up \(partitions.map(\.description).joined(separator: ", "))")))
        }
    }
}
