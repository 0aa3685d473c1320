import FleetKafka
import FleetPostgres

/// What one worker does (SPEC §4, §6.6, §6.9).
public struct WorkerOptions: Sendable {
    public var concurrency: Int = System.coreCount
    public var batchSize: Int = 500
    public var batchWait: Duration = .milliseconds(50)
    public var drainTimeout: Duration = .seconds(20)
    /// How long one batch may take (SPEC §6.12): its transaction's statement and lock timeouts,
    /// and the deadline after which it is rolled back. A file read gets half of it.
    public var batchTimeout: Duration = .seconds(120)
    public var maxFileBytes: Int = 64 << 20
    public var maxAttempts: Int = 3
    /// Consecutive failed batches before the worker reports not-ready and gives its partitions up.
    public var failuresBeforePause: Int = 5
    public var poolSize: Int = 2

    public init() {}

    /// A read still running after this is abandoned and its file fails `read_timeout`.
    var readTimeout: Duration { batchTimeout / 2 }
    /// A batch or read stuck for longer makes `/healthz` say the process is not alive.
    var stuckBound: Duration { batchTimeout * 2 }
}
