/// The pool's bookkeeping as a value: every event returns what the caller must do, and the
/// caller does it (connect, close, resume a waiter) outside the lock.
struct PoolStateMachine<Connection: AnyObject> {
    enum AcquireAction {
        case use(Connection)
        case open
        case wait
        case failClosed
        case failQueueFull
    }

    enum ReleaseAction {
        case none
        case handTo(waiter: Int, Connection)
        case close(Connection)
        case closeAndOpenFor(waiter: Int, Connection)
    }

    let maxConnections: Int
    let maxWaiters: Int
    private(set) var idle: [(connection: Connection, since: ContinuousClock.Instant)] = []
    private(set) var leased = 0
    private(set) var opening = 0
    private(set) var waiters: [Int] = []
    private(set) var closed = false

    init(maxConnections: Int, maxWaiters: Int = .max) {
        precondition(maxConnections > 0)
        self.maxConnections = maxConnections
        self.maxWaiters = maxWaiters
    }

    var total: Int { idle.count + leased + opening }

    mutating func acquire(waiter: Int) -> AcquireAction {
        if closed { return .failClosed }
        if let last = idle.popLast() {
            leased += 1
            return .use(last.connection)
        }
        if total < maxConnections {
            opening += 1
            return .open
        }
        guard waiters.count < maxWaiters else { return .failQueueFull }
        waiters.append(waiter)
        return .wait
    }

    /// A leased connection turned out dead; its slot is used to open a new one.
    mutating func replaceLeased() {
        leased -= 1
        opening += 1
    }

    mutating func opened() {
        opening -= 1
        leased += 1
    }

    /// Returns a waiter that may now open a connection in the freed slot.
    mutating func openFailed() -> Int? {
        opening -= 1
        return takeSlotForWaiter()
    }

    mutating func release(_ connection: Connection, reusable: Bool, now: ContinuousClock.Instant) -> ReleaseAction {
        leased -= 1
        if reusable && !closed {
            if !waiters.isEmpty {
                leased += 1
                return .handTo(waiter: waiters.removeFirst(), connection)
            }
            idle.append((connection, now))
            return .none
        }
        if let waiter = takeSlotForWaiter() { return .closeAndOpenFor(waiter: waiter, connection) }
        return .close(connection)
    }

    /// Removes a waiter that timed out or was cancelled; false if it was already served.
    mutating func removeWaiter(_ waiter: Int) -> Bool {
        guard let index = waiters.firstIndex(of: waiter) else { return false }
        waiters.remove(at: index)
        return true
    }

    /// Idle connections unused for `idleTimeout`, to be closed so the server slot goes round.
    mutating func reap(now: ContinuousClock.Instant, idleTimeout: Duration) -> [Connection] {
        let expired = idle.filter { now - $0.since >= idleTimeout }.map(\.connection)
        idle.removeAll { now - $0.since >= idleTimeout }
        return expired
    }

    mutating func close() -> (idle: [Connection], waiters: [Int]) {
        closed = true
        defer { idle = []; waiters = [] }
        return (idle.map(\.connection), waiters)
    }

    private mutating func takeSlotForWaiter() -> Int? {
        guard !closed, !waiters.isEmpty, total < maxConnections else { return nil }
        opening += 1
        return waiters.removeFirst()
    }
}
