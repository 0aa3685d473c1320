import Synchronization

/// Bounded exponential backoff with decorrelated jitter and a total time budget.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// No new attempt starts after this much time since the first.
    public var totalBudget: Duration

    public init(maxAttempts: Int = 6, baseDelay: Duration = .milliseconds(50),
                maxDelay: Duration = .seconds(2), totalBudget: Duration = .seconds(30)) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.totalBudget = totalBudget
    }

    public static let `default` = RetryPolicy()

    /// Decorrelated jitter: uniform in [base, previous × 3], capped at maxDelay.
    public func nextDelay(after previous: Duration?) -> Duration {
        let base = baseDelay.seconds
        let upper = max(base, (previous?.seconds ?? base) * 3)
        let pick = base == upper ? base : Double.random(in: base...upper)
        return .seconds(min(maxDelay.seconds, pick))
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}

/// One retry that `withRetry` is about to make.
public struct RetryEvent: Sendable {
    /// What is retried ("a batch of run 7", "the lease heartbeat").
    public var what: String
    public var error: PostgresError
    /// The attempt that failed (1 for the first).
    public var attempt: Int
    public var delay: Duration
}

/// Where every retry of the process is reported (a log line each); set once at start.
public enum RetryEvents {
    private static let observer = Mutex<(@Sendable (RetryEvent) -> Void)?>(nil)

    public static func observe(_ handler: @escaping @Sendable (RetryEvent) -> Void) {
        observer.withLock { $0 = handler }
    }

    static func report(_ event: RetryEvent) {
        observer.withLock { $0 }?(event)
    }
}

/// Runs `body`, retrying it while it throws a retryable `PostgresError` (SPEC §6.9) and the
/// policy allows; each retry is reported to `RetryEvents` as `what`. Any other error, and the
/// last retryable one, is rethrown as is.
public func withRetry<T>(
    isolation: isolated (any Actor)? = #isolation,
    _ policy: RetryPolicy = .default,
    what: String = "a statement",
    onRetry: (_ error: PostgresError, _ attempt: Int, _ delay: Duration) -> Void = { _, _, _ in },
    _ body: () async throws -> T
) async throws -> T {
    let clock = ContinuousClock()
    let start = clock.now
    var attempt = 1
    var delay: Duration? = nil
    while true {
        do {
            return try await body()
        } catch let error as PostgresError where error.isRetryable {
            let next = policy.nextDelay(after: delay)
            guard attempt < policy.maxAttempts, clock.now - start + next <= policy.totalBudget else { throw error }
            onRetry(error, attempt, next)
            RetryEvents.report(RetryEvent(what: what, error: error, attempt: attempt, delay: next))
            try await Task.sleep(for: next)
            delay = next
            attempt += 1
        }
    }
}
