import Foundation
public import FleetPostgres
import Synchronization

/// A held lease: single flight for one name across every node (SPEC §6.4, §6.5).
///
/// `Lease.hold` acquires, heartbeats on a dedicated connection from a dedicated thread (so the
/// beat keeps its cadence when every core is busy and the shared pool is exhausted), and releases
/// on every exit path. When a heartbeat finds the lease gone, the body is cancelled at once and
/// `hold` throws `LeaseLost`.
public final class Lease: Sendable {
    public let name: String
    public let holder: String
    public let token: Int64
    let store: LeaseStore
    let timing: LeaseTiming
    private let lostState = Mutex(false)

    init(name: String, holder: String, token: Int64, store: LeaseStore, timing: LeaseTiming = LeaseTiming()) {
        self.name = name
        self.holder = holder
        self.token = token
        self.store = store
        self.timing = timing
    }

    /// Whether a heartbeat found the lease taken over or force-released.
    public var isLost: Bool { lostState.withLock { $0 } }

    /// Records that a newer holder superseded this one, with a log line the first time.
    private func markLost() {
        let first = lostState.withLock { lost in
            defer { lost = true }
            return !lost
        }
        if first { Log(component: "lease").event("lease_lost", ["lease": name, "token": String(token)], level: .error) }
    }

    /// Runs `body` in a transaction only while this lease is current; else throws `LeaseLost`
    /// and writes nothing.
    public func fenced<T>(on connection: PostgresConnection,
                          _ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            // A holder that stalls inside the transaction (frozen, cut off) would block a takeover
            // with its key-share lock: the server ends the transaction once it has idled for the TTL.
            return try await store.fenced(name, token: token, idleTimeout: timing.ttl, on: connection, body)
        } catch let error as LeaseLost {
            markLost()
            throw error
        }
    }

    /// Inside the caller's transaction: throws `LeaseLost` unless this lease is still current,
    /// and holds off a takeover until the transaction ends.
    public func checkCurrent(on connection: PostgresConnection) async throws {
        do {
            try await store.checkCurrent(name, token: token, on: connection)
        } catch let error as LeaseLost {
            markLost()
            throw error
        }
    }

    /// A holder on this host whose process is gone (SIGKILLed, OOM-killed) cannot write again:
    /// waiting TTL + grace for it would only delay the rerun. A stopped (SIGSTOP) process is alive.
    public static func isDeadLocalHolder(_ holder: String) -> Bool {
        let parts = holder.split(separator: ":")
        guard parts.count == 3, parts[0] == System.hostName, let pid = Int32(parts[1]), pid != getpid() else { return false }
        return !Command.isAlive(pid)
    }

    /// "host:pid:nonce": who holds a lease, readable by an operator.
    public static func holderIdentity() -> String {
        "\(System.hostName):\(getpid()):\(UInt32.random(in: 0...UInt32.max) % 100_000)"
    }

    /// Acquires `name` (or throws `LeaseBusy`), runs `body` while heartbeating, releases on return,
    /// throw and cancellation. Throws `LeaseLost` if the lease is lost meanwhile.
    public static func hold<T: Sendable>(
        _ name: String, holder: String = holderIdentity(), timing: LeaseTiming = LeaseTiming(),
        schema: Schema, url: String, onHeartbeat: (@Sendable (ContinuousClock.Instant) -> Void)? = nil,
        _ body: @escaping @Sendable (Lease) async throws -> T
    ) async throws -> T {
        let store = LeaseStore(schema: schema)
        // The heartbeat's own connection: it must not wait behind a busy pool.
        // Retried like every other statement (SPEC §6.9): with scarce slots the first try may get 53300.
        let connection = HeartbeatConnection(try await withRetry(.fleet, what: "the lease's connection") { try await PostgresConnection.connect(url) })
        let lease: Lease
        do {
            let token: Int64
            do {
                token = try await store.acquire(name, holder: holder, timing: timing, on: connection.current)
            } catch let busy as LeaseBusy {
                guard let other = busy.lease.holder, isDeadLocalHolder(other) else { throw busy }
                token = try await store.acquire(name, holder: holder, timing: timing, deadHolder: other,
                                                on: connection.current)
            }
            lease = Lease(name: name, holder: holder, token: token, store: store, timing: timing)
        } catch {
            await connection.current.close()
            throw error
        }
        let executor = ThreadExecutor(label: "filefleet.lease.\(name)")
        let outcome: Result<T, any Error> = await withTaskGroup(of: Result<T, any Error>?.self) { group in
            group.addTask(executorPreference: executor) {
                do {
                    try await lease.heartbeatUntilCancelled(url: url, connection: connection, executor: executor, timing: timing,
                                                           onHeartbeat: onHeartbeat)
                    return nil
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                do { return .success(try await body(lease)) } catch { return .failure(error) }
            }
            var outcome: Result<T, any Error>? = nil
            while outcome == nil, let next = await group.next() {
                outcome = next
                if next != nil { group.cancelAll() }
            }
            return outcome ?? .failure(CancellationError())
        }
        // Release on every exit path, even when the caller's task is cancelled.
        let superseded = await Task {
            if connection.current.isBroken, let fresh = try? await PostgresConnection.connect(url) {
                connection.replace(with: fresh)
            }
            // A body that failed (say, its connection was ended by the server) may have been
            // superseded before a heartbeat could tell: ask, so that the failure reads as LeaseLost.
            var superseded = false
            if case .failure(let error) = outcome, !(error is CancellationError), !lease.isLost,
               let info = try? await store.info(name, on: connection.current) {
                superseded = info.token != lease.token || info.holder != holder
            }
            try? await store.release(name, holder: holder, token: lease.token, on: connection.current)
            await connection.current.close()
            return superseded
        }.value
        if case .failure = outcome, lease.isLost || superseded { throw LeaseLost(name: name, token: lease.token) }
        return try outcome.get()
    }

    /// Beats every `timing.heartbeat` until cancelled. A beat that updates no row means the lease
    /// is lost: throw at once. A broken connection is replaced; the beat is retried next interval.
    private func heartbeatUntilCancelled(url: String, connection: HeartbeatConnection, executor: ThreadExecutor,
                                         timing: LeaseTiming,
                                         onHeartbeat: (@Sendable (ContinuousClock.Instant) -> Void)?) async throws {
        let clock = ContinuousClock()
        var next = clock.now
        while true {
            next += timing.heartbeat
            try await executor.sleep(until: next)
            do {
                if connection.current.isBroken {
                    let old = connection.replace(with: try await PostgresConnection.connect(url))
                    await old.close()
                }
                guard try await store.heartbeat(name, holder: holder, token: token, timing: timing,
                                                on: connection.current) else {
                    markLost()
                    throw LeaseLost(name: name, token: token)
                }
                onHeartbeat?(clock.now)
            } catch let error as PostgresError {
                // Keep trying: fencing protects every write, and a contender must wait TTL + grace.
                Log(component: "lease").event("retrying", [
                    "what": "the heartbeat of lease \(name)", "class": FleetMetrics.retryClass(error),
                    "delay_ms": String(Int(timing.heartbeat.seconds * 1000)), "error": "\(error)"], level: .warning)
            }
        }
    }
}
