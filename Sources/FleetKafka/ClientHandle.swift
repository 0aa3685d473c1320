internal import CRdKafka
import Synchronization
import Foundation

/// An `rd_kafka_t` that several threads use. librdkafka's API is thread-safe; what needs
/// guarding is the end of its life: `retire()` refuses new uses and waits for running ones,
/// so `rd_kafka_destroy` never races a call.
final class ClientHandle: Sendable {
    // @unchecked: the pointer itself is immutable; librdkafka synchronizes the object behind it.
    private struct Raw: @unchecked Sendable { let rk: OpaquePointer }
    private let raw: Raw
    private let state = Mutex<(users: Int, retired: Bool)>((0, false))

    init(_ rk: OpaquePointer) { raw = Raw(rk: rk) }

    /// For the thread that owns the client's life (poll, close, destroy).
    var owned: OpaquePointer { raw.rk }

    func use<R>(_ body: (OpaquePointer) throws(KafkaError) -> R) throws(KafkaError) -> R {
        let ok = state.withLock { s in
            if s.retired { return false }
            s.users += 1
            return true
        }
        guard ok else { throw KafkaError(code: .destroyed, message: "the Kafka client is closed") }
        defer { state.withLock { $0.users -= 1 } }
        return try body(raw.rk)
    }

    /// Blocking: call on the owning thread only.
    func retire() {
        state.withLock { $0.retired = true }
        while state.withLock({ $0.users }) > 0 { usleep(1000) }
    }
}
