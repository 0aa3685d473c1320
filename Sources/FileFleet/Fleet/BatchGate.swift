import ServiceLifecycle
import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

/// Lets a revocation wait until the batch in flight has committed its offsets.
final class BatchGate: Sendable {
    private let state = Mutex<(busy: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func begin() { state.withLock { $0.busy = true } }

    func end() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.busy = false
            defer { s.waiters = [] }
            return s.waiters
        }
        waiters.forEach { $0.resume() }
    }

    func waitUntilIdle() async {
        await withCheckedContinuation { continuation in
            let idle = state.withLock { s -> Bool in
                if !s.busy { return true }
                s.waiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }
}
