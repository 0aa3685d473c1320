import Dispatch
import Synchronization

/// Hands chunks from a producer on a thread of its own (a walk) to an async consumer (a COPY), at
/// most `ahead` chunks in between: the producer waits, on its thread, while the consumer is behind,
/// so what is in flight stays bounded however fast the producer is.
final class ChunkHandoff<Chunk: Sendable>: Sendable {
    let chunks: AsyncStream<Chunk>
    private let continuation: AsyncStream<Chunk>.Continuation
    private let slots: DispatchSemaphore
    private let cancelled = Atomic(false)

    init(ahead: Int) {
        (chunks, continuation) = AsyncStream.makeStream()
        slots = DispatchSemaphore(value: ahead)
    }

    /// Producer: passes `chunk` on, after waiting for a free slot. Blocking: never call it on the
    /// cooperative pool. Throws `CancellationError` once the consumer has given up.
    func put(_ chunk: Chunk) throws {
        slots.wait()
        if cancelled.load(ordering: .acquiring) { throw CancellationError() }
        continuation.yield(chunk)
    }

    /// Producer: no more chunks; the consumer's loop over `chunks` ends.
    func finish() { continuation.finish() }

    /// Consumer: one chunk is dealt with, its slot is free.
    func took() { slots.signal() }

    /// Consumer: it takes no more; a producer waiting in `put` (or arriving there) throws.
    func cancel() {
        cancelled.store(true, ordering: .releasing)
        slots.signal()
        continuation.finish()
    }
}
