import Dispatch
import Synchronization

/// The pool could not lend a connection.
public struct PostgresPoolError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable { case acquireTimeout, waitQueueFull, closed }
    public var kind: Kind
    public var description: String {
        switch kind {
        case .acquireTimeout: return "timed out waiting for a Postgres connection from the pool"
        case .waitQueueFull: return "too many tasks already waiting for a Postgres connection from the pool"
        case .closed: return "the Postgres pool is closed"
        }
    }
}

/// A bounded set of connections lent one task at a time. Waiters queue in order and give up after
/// `acquireTimeout` (at most `maxWaiters` wait); dead connections are replaced; idle ones close
/// after `idleTimeout`, so that scarce server slots go round (SPEC §6.9).
public final class PostgresPool: Sendable {
    public let url: String
    public let maxConnections: Int
    public let acquireTimeout: Duration
    public let idleTimeout: Duration
    public let maxWaiters: Int

    private enum Grant: Sendable {
        case connection(PostgresConnection)
        case openSlot
    }

    private struct State {
        var machine: PoolStateMachine<PostgresConnection>
        var continuations: [Int: CheckedContinuation<Grant, any Error>] = [:]
        var nextWaiter = 0
    }

    private let state: Mutex<State>
    private let reaper = Mutex<Task<Void, Never>?>(nil)

    public init(url: String, maxConnections: Int = 4, acquireTimeout: Duration = .seconds(10),
                idleTimeout: Duration = .seconds(5), maxWaiters: Int = 10_000) {
        self.url = url
        self.maxWaiters = maxWaiters
        self.maxConnections = maxConnections
        self.acquireTimeout = acquireTimeout
        self.idleTimeout = idleTimeout
        self.state = Mutex(State(machine: PoolStateMachine(maxConnections: maxConnections, maxWaiters: maxWaiters)))
        let interval = min(idleTimeout / 2, .seconds(1))
        reaper.withLock {
            $0 = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    guard let self else { return }
                    await self.closeIdle()
                }
            }
        }
    }

    deinit {
        reaper.withLock { $0?.cancel() }
    }

    public struct Stats: Sendable, Equatable {
        public var idle: Int
        public var leased: Int
        public var opening: Int
        public var waiting: Int
    }

    public var stats: Stats {
        state.withLock { s in
            Stats(idle: s.machine.idle.count, leased: s.machine.leased, opening: s.machine.opening,
                  waiting: s.machine.waiters.count)
        }
    }

    /// Lends a connection to `body` and takes it back, whatever `body` does.
    public func withConnection<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await acquire()
        do {
            let value = try await body(connection)
            await release(connection)
            return value
        } catch {
            await release(connection)
            throw error
        }
    }

    /// A transaction on a pooled connection: commit on return, rollback on throw.
    public func withTransaction<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withConnection(isolation: isolation) { connection in
            try await connection.withTransaction(isolation: isolation) { try await body($0) }
        }
    }

    /// Fails waiters, closes idle connections now and leased ones when they come back.
    public func close() async {
        reaper.withLock { $0?.cancel() }
        let (idle, continuations) = state.withLock { s in
            let (idle, waiters) = s.machine.close()
            let continuations = waiters.compactMap { s.continuations.removeValue(forKey: $0) }
            return (idle, continuations)
        }
        for continuation in continuations { continuation.resume(throwing: PostgresPoolError(kind: .closed)) }
        for connection in idle { await connection.close() }
    }

    // MARK: -

    private func acquire() async throws -> PostgresConnection {
        let waiter = state.withLock { s in
            defer { s.nextWaiter += 1 }
            return s.nextWaiter
        }
        let grant: Grant = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                let action = state.withLock { s -> PoolStateMachine<PostgresConnection>.AcquireAction? in
                    if Task.isCancelled { return nil }
                    let action = s.machine.acquire(waiter: waiter)
                    if case .wait = action { s.continuations[waiter] = continuation }
                    return action
                }
                switch action {
                case nil: continuation.resume(throwing: CancellationError())
                case .use(let connection): continuation.resume(returning: .connection(connection))
                case .open: continuation.resume(returning: .openSlot)
                case .failClosed: continuation.resume(throwing: PostgresPoolError(kind: .closed))
                case .failQueueFull: continuation.resume(throwing: PostgresPoolError(kind: .waitQueueFull))
                case .wait:
                    let timeout = acquireTimeout
                    DispatchQueue.global().asyncAfter(deadline: .now() + timeout.seconds) { [weak self] in
                        self?.failWaiter(waiter, PostgresPoolError(kind: .acquireTimeout))
                    }
                }
            }
        } onCancel: {
            self.failWaiter(waiter, CancellationError())
        }
        switch grant {
        case .openSlot:
            return try await open()
        case .connection(let connection):
            if await connection.isAlive() { return connection }
            await connection.close()
            state.withLock { $0.machine.replaceLeased() }
            return try await open()
        }
    }

    private func open() async throws -> PostgresConnection {
        do {
            let connection = try await PostgresConnection.connect(url)
            state.withLock { $0.machine.opened() }
            return connection
        } catch {
            let continuation = state.withLock { s in
                s.machine.openFailed().flatMap { s.continuations.removeValue(forKey: $0) }
            }
            continuation?.resume(returning: .openSlot)
            throw error
        }
    }

    private func release(_ connection: PostgresConnection) async {
        let reusable = await connection.isAlive()
        let now = ContinuousClock.now
        let (action, continuation) = state.withLock { s in
            let action = s.machine.release(connection, reusable: reusable, now: now)
            switch action {
            case .handTo(let waiter, _), .closeAndOpenFor(let waiter, _):
                return (action, s.continuations.removeValue(forKey: waiter))
            case .none, .close:
                return (action, nil)
            }
        }
        switch action {
        case .none:
            break
        case .handTo(_, let connection):
            continuation?.resume(returning: .connection(connection))
        case .close(let connection):
            await connection.close()
        case .closeAndOpenFor(_, let connection):
            continuation?.resume(returning: .openSlot)
            await connection.close()
        }
    }

    private func failWaiter(_ waiter: Int, _ error: any Error) {
        let continuation = state.withLock { s in
            s.machine.removeWaiter(waiter) ? s.continuations.removeValue(forKey: waiter) : nil
        }
        continuation?.resume(throwing: error)
    }

    private func closeIdle() async {
        let expired = state.withLock { $0.machine.reap(now: .now, idleTimeout: idleTimeout) }
        for connection in expired { await connection.close() }
    }
}
