import FleetKafka
import Synchronization

/// A producer made as soon as a run is sure to publish, so that it is ready when publishing
/// begins. An idempotent librdkafka producer sends nothing until it has a producer id, and a new
/// one asks for it only after its first connection is up, on a 500 ms timer: about a second
/// (measured: 1.0 s) in which workers that have joined their group would have nothing to do.
final class ProducerWarmup: Sendable {
    private let configuration: KafkaConfiguration
    private let state = Mutex<(producer: KafkaProducer?, taken: Bool)>((nil, false))

    init(configuration: KafkaConfiguration) {
        self.configuration = configuration
    }

    /// Makes the producer unless it is made already. A configuration librdkafka refuses makes
    /// none: publishing then makes its own and reports the error.
    func start() {
        state.withLock { s in
            guard s.producer == nil, !s.taken else { return }
            s.producer = try? KafkaProducer(configuration: configuration)
        }
    }

    /// The producer, once, for the first attempt to publish.
    func take() -> KafkaProducer? {
        state.withLock { s in
            s.taken = true
            defer { s.producer = nil }
            return s.producer
        }
    }

    /// Closes a producer nobody took (the run needed no publishing after all).
    func close() async {
        await take()?.close(timeout: .zero)
    }
}
