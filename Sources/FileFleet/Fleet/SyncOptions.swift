import FleetKafka
import FleetPostgres

/// What one `sync` does beyond where the servers are (SPEC §4).
public struct SyncOptions: Sendable {
    public var sourceID: String?
    public var includes: [String] = []
    public var excludes: [String] = []
    public var workers: Int = 0
    public var maxFileBytes: Int = 64 << 20
    public var maxAttempts: Int = 3
    public var lease = LeaseTiming()
    public var stallWindow: Duration = .seconds(30)
    /// With no in-process workers: how long a run waits for a live worker before it stops
    /// (`no_workers`, SPEC §6.12).
    public var noWorkerTimeout: Duration = .seconds(30)
    /// Lets a run delete more than half of a source's documents (SPEC §6.13).
    public var allowMassDelete = false
    /// Paths per batch of the sync's own imports (its in-process workers and its direct import).
    /// Each transaction costs the server about 1.5 ms besides its rows: 2,000 rather than a
    /// worker process's 500 took a 100,000-file sync from 3.1 to 2.6 s (server CPU 2.0 → 1.7 s).
    public var batchSize = 2000
    /// In-process workers' batch deadline (`WorkerOptions.batchTimeout`).
    public var batchTimeout: Duration = WorkerOptions().batchTimeout
    /// How often progress is read from the checkpoints.
    public var pollInterval: Duration = .milliseconds(500)
    /// A run with at most this many paths left is imported by the coordinator itself, without
    /// Kafka: a small incremental sync pays no topic and no consumer-group join (1–3 s). 0: never.
    public var directMax = 500

    public init() {}
}
