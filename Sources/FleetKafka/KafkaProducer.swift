internal import CRdKafka
import Synchronization

/// An idempotent producer (`acks=all`, `murmur2_random`). Sends resolve on the delivery report.
///
/// After a fatal error, or a delivery that timed out (an idempotent producer whose broker lost its
/// state never recovers, SPEC §9.1), the failed sends throw and the next send runs on a new
/// librdkafka client; messages still queued on the old one fail with `.purgeQueue`.
public final class KafkaProducer: Sendable {
    private let configuration: KafkaConfiguration
    private let state: Mutex<(client: ProducerClient?, clientsCreated: Int)>
    /// Sends and batches whose delivery reports are still outstanding (tests check for leaks).
    let liveGroups = LiveCounter()

    public init(configuration: KafkaConfiguration) throws(KafkaError) {
        try KafkaError.checkSupportedLibrary()
        self.configuration = configuration
        self.state = Mutex((try ProducerClient(configuration: configuration), 1))
    }

    deinit {
        state.withLock { $0.client }?.shutdown(flushTimeout: .seconds(5))
    }

    /// How many librdkafka clients this producer has created (more than 1 after fatal errors).
    public var clientsCreated: Int { state.withLock { $0.clientsCreated } }

    @discardableResult
    public func send(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]?) async throws -> KafkaDelivery {
        let group = DeliveryGroup(liveGroups)
        try await produce(KafkaRecord(topic: topic, partition: partition, key: key, value: value), into: group)
        return try await group.wait()!
    }

    @discardableResult
    public func send(topic: String, partition: Int32? = nil, key: String, value: [UInt8]?) async throws -> KafkaDelivery {
        try await send(topic: topic, partition: partition, key: Array(key.utf8), value: value)
    }

    /// Sends all records and waits for every delivery report; throws the first delivery error.
    /// Records that were enqueued before an error are still delivered (or fail) in the background.
    public func sendBatch(_ records: [KafkaRecord]) async throws {
        let group = DeliveryGroup(liveGroups)
        for record in records {
            do {
                try await produce(record, into: group)
            } catch {
                group.seal()
                throw error
            }
        }
        _ = try await group.wait()
    }

    /// Messages enqueued and not yet acknowledged or failed.
    public var outstandingMessages: Int { state.withLock { $0.client }?.outstanding ?? 0 }

    /// Waits until every message sent so far is acknowledged or failed.
    public func flush(timeout: Duration) async throws {
        guard let client = state.withLock({ $0.client }) else { return }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while client.outstanding > 0 {
            guard clock.now < deadline else {
                throw KafkaError(code: .timedOut, message: "flush: \(client.outstanding) messages still undelivered after \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Flushes (up to `timeout`), then destroys the client; undelivered messages fail with `.purgeQueue`.
    public func close(timeout: Duration = .seconds(30)) async {
        guard let client = state.withLock({ s in defer { s.client = nil }; return s.client }) else { return }
        await client.shutdown(flushTimeout: timeout).wait()
    }

    private func currentClient() throws(KafkaError) -> ProducerClient {
        try state.withLock { s throws(KafkaError) in
            guard let client = s.client else { throw KafkaError(code: .destroyed, message: "producer is closed") }
            guard client.events.isBroken else { return client }
            client.shutdown(flushTimeout: .zero)
            let fresh = try ProducerClient(configuration: configuration)
            s.client = fresh
            s.clientsCreated += 1
            return fresh
        }
    }

    private func produce(_ record: KafkaRecord, into group: DeliveryGroup) async throws {
        while true {
            let client = try currentClient()
            group.add()
            let box = Unmanaged.passRetained(group)
            let err: rd_kafka_resp_err_t
            do {
                err = try client.handle.use { rk in
                    record.topic.withCString { topic in
                        withBytes(record.key) { key, keyLen, hasKey in
                            withBytes(record.value) { value, valueLen, hasValue in
                                filefleet_produce(rk, topic, record.partition ?? RD_KAFKA_PARTITION_UA,
                                                  key, keyLen, hasKey, value, valueLen, hasValue, box.toOpaque())
                            }
                        }
                    }
                }
            } catch {
                // That client was replaced or closed meanwhile: try the current one.
                box.release()
                group.remove()
                continue
            }
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            // Not enqueued: no delivery report will come for it.
            box.release()
            group.remove()
            if err == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                try await Task.sleep(for: .milliseconds(2))
                continue
            }
            throw KafkaError(err, message: "produce to \(record.topic): \(String(cString: rd_kafka_err2str(err)))")
        }
    }
}

private func withBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawPointer?, Int, Int32) -> R) -> R {
    guard let bytes else { return body(nil, 0, 0) }
    return bytes.withUnsafeBytes { body($0.baseAddress, $0.count, 1) }
}

/// Collects the delivery reports of one send or batch. Each enqueued message holds one retain.
final class DeliveryGroup: Sendable {
    private struct State {
        var pending = 0
        var sealed = false
        var finished = false
        var error: KafkaError?
        var lastDelivery: KafkaDelivery?
        var continuation: CheckedContinuation<KafkaDelivery?, any Error>?
    }
    private let state = Mutex(State())
    private let live: LiveCounter

    init(_ live: LiveCounter) {
        self.live = live
        live.value.add(1, ordering: .relaxed)
    }

    deinit { live.value.subtract(1, ordering: .relaxed) }

    func add() { state.withLock { $0.pending += 1 } }

    func remove() { state.withLock { $0.pending -= 1 } }

    func seal() { finishIfDone { $0.sealed = true } }

    func delivered(_ err: rd_kafka_resp_err_t, partition: Int32, offset: Int64, fatal: Bool) {
        finishIfDone { s in
            s.pending -= 1
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                s.lastDelivery = KafkaDelivery(partition: partition, offset: offset)
            } else if s.error == nil {
                s.error = KafkaError(code: .init(rawValue: err.rawValue),
                                     message: "delivery failed: \(String(cString: rd_kafka_err2str(err)))",
                                     isFatal: fatal)
            }
        }
    }

    /// Seals the group and waits for all reports; returns the last delivery.
    func wait() async throws -> KafkaDelivery? {
        try await withCheckedThrowingContinuation { c in
            finishIfDone { s in
                s.sealed = true
                s.continuation = c
            }
        }
    }

    private func finishIfDone(_ update: (inout State) -> Void) {
        let (continuation, result): (CheckedContinuation<KafkaDelivery?, any Error>?, Result<KafkaDelivery?, KafkaError>) =
            state.withLock { s in
                update(&s)
                guard s.sealed, s.pending == 0, !s.finished, let c = s.continuation else { return (nil, .success(nil)) }
                s.finished = true
                s.continuation = nil
                return (c, s.error.map { .failure($0) } ?? .success(s.lastDelivery))
            }
        continuation?.resume(with: result)
    }
}

final class LiveCounter: Sendable {
    let value = Atomic<Int>(0)
}

/// Shared with librdkafka's callbacks through the opaque pointer.
final class ProducerEvents: Sendable {
    private let fatal = Atomic<Bool>(false)
    private let broken = Atomic<Bool>(false)

    /// Delivery errors after which the next send gets a new client. After a broker restart an
    /// idempotent producer can loop on an unknown producer id without ever raising a fatal error
    /// (measured on Tansu: every message times out); a fresh client gets a fresh producer id.
    static let replaceClientAfter: Set<rd_kafka_resp_err_t> = [
        RD_KAFKA_RESP_ERR__FATAL, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID,
        RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
    ]

    var isFatal: Bool { fatal.load(ordering: .acquiring) }
    func markFatal() { fatal.store(true, ordering: .releasing) }
    /// The client should be replaced (fatal, or stuck).
    var isBroken: Bool { broken.load(ordering: .acquiring) }
    func markBroken() { broken.store(true, ordering: .releasing) }
}

/// One `rd_kafka_t` and the thread that serves its delivery reports.
final class ProducerClient: Sendable {
    let handle: ClientHandle
    let events = ProducerEvents()
    private let stopping = Mutex<Duration?>(nil)
    private let destroyed = Latch()

    init(configuration: KafkaConfiguration) throws(KafkaError) {
        let conf = try configuration.makeConf(configuration.producerProperties, for: .producer)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(events).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf) { rk, message, opaque in
            guard let message, let box = message.pointee._private else { return }
            let group = Unmanaged<DeliveryGroup>.fromOpaque(box).takeRetainedValue()
            let m = message.pointee
            var fatal = m.err == RD_KAFKA_RESP_ERR__FATAL
            if let opaque {
                let events = Unmanaged<ProducerEvents>.fromOpaque(opaque).takeUnretainedValue()
                if ProducerEvents.replaceClientAfter.contains(m.err) { events.markBroken() }
                fatal = fatal || events.isFatal
            }
            group.delivered(m.err, partition: m.partition, offset: m.offset, fatal: fatal)
        }
        rd_kafka_conf_set_error_cb(conf) { rk, err, reason, opaque in
            guard err == RD_KAFKA_RESP_ERR__FATAL.rawValue, let opaque else { return }
            let events = Unmanaged<ProducerEvents>.fromOpaque(opaque).takeUnretainedValue()
            events.markFatal()
            events.markBroken()
        }
        handle = ClientHandle(try makeClient(RD_KAFKA_PRODUCER, conf))
        startThread(name: "kafka-producer") { [self] in run() }
    }

    var outstanding: Int { (try? handle.use { Int(rd_kafka_outq_len($0)) }) ?? 0 }

    /// Asks the thread to flush for up to `flushTimeout`, purge the rest and destroy the client.
    @discardableResult
    func shutdown(flushTimeout: Duration) -> Latch {
        stopping.withLock { if $0 == nil { $0 = flushTimeout } }
        return destroyed
    }

    private func run() {
        while true {
            let rk = handle.owned
            if let flushTimeout = stopping.withLock({ $0 }) {
                handle.retire()
                rd_kafka_flush(rk, Int32(clamping: KafkaConfiguration.milliseconds(flushTimeout)))
                rd_kafka_purge(rk, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
                // Serve the purged messages' delivery reports so their continuations and retains end.
                while rd_kafka_outq_len(rk) > 0 { rd_kafka_poll(rk, 50) }
                rd_kafka_destroy(rk)
                destroyed.set()
                return
            }
            rd_kafka_poll(rk, 100)
        }
    }
}
