import CoreMetrics
import FleetPostgres
import Foundation
import Prometheus
import Synchronization

/// What a worker or a coordinator exposes on `/metrics` and `/readyz` (SPEC §7), through
/// swift-metrics with the Prometheus backend. Each instance has a registry of its own (tests in one
/// process stay apart); the CLI bootstraps `MetricsSystem` with `factory`, so that any library's
/// swift-metrics land on the same page. Fixed label sets only.
public final class FleetMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    /// The factory of this instance's metrics: `MetricsSystem.bootstrap(metrics.factory)`.
    var factory: PrometheusMetricsFactory { Self.factory(registry) }

    static func factory(_ registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["filefleet_batch_duration_seconds"] =
            [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000].map { Duration.milliseconds($0) }
        factory.valueHistogramBuckets["filefleet_file_size_bytes"] =
            [256, 1024, 4096, 16384, 65536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864]
        return factory
    }

    private let files: [Outcome: CoreMetrics.Counter]
    private let refused: CoreMetrics.Counter
    private let republished: CoreMetrics.Counter
    private let retries: [String: CoreMetrics.Counter]
    private let batchDuration: CoreMetrics.Timer
    private let fileSize: CoreMetrics.Recorder
    /// Gauges appear once their value is known (an absent lag is unknown, not 0).
    private let gauges = Mutex<[String: Meter]>([:])

    struct Values {
        var lastHeartbeat: ContinuousClock.Instant?
        var lastWorkerBeat: ContinuousClock.Instant?
        var lastStoreContact: ContinuousClock.Instant?
        /// Each component of the process (each in-process worker, the coordinator) and why it
        /// is not ready, nil when it is.
        var readiness: [String: String?] = [:]
        /// Each consumer's lag (in-process workers share one FleetMetrics), where known.
        var lags: [String: Int] = [:]
        /// What may hang (a batch, an abandoned read), by key: when it began and how long it may take.
        var pending: [String: (since: ContinuousClock.Instant, bound: Duration, what: String)] = [:]
    }

    private let values = Mutex(Values())

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        let configured = Self.factory(registry)
        files = Dictionary(uniqueKeysWithValues: Outcome.allCases.map {
            ($0, CoreMetrics.Counter(label: "filefleet_files_total", dimensions: [("outcome", $0.rawValue)], factory: configured))
        })
        refused = CoreMetrics.Counter(label: "filefleet_messages_refused_total", factory: configured)
        republished = CoreMetrics.Counter(label: "filefleet_paths_republished_total", factory: configured)
        retries = Dictionary(uniqueKeysWithValues: Self.retryClasses.map {
            ($0, CoreMetrics.Counter(label: "filefleet_retries_total", dimensions: [("class", $0)], factory: configured))
        })
        batchDuration = CoreMetrics.Timer(label: "filefleet_batch_duration_seconds", factory: configured)
        fileSize = CoreMetrics.Recorder(label: "filefleet_file_size_bytes", aggregate: true, factory: configured)
        Meter(label: "filefleet_build_info", dimensions: [("version", FileFleetVersion.string)], factory: configured).set(1)
    }

    func recordBatch(_ counts: OutcomeCounts, refused: Int, duration: Duration) {
        for outcome in Outcome.allCases where counts[outcome] > 0 {
            files[outcome]?.increment(by: counts[outcome])
        }
        if refused > 0 { self.refused.increment(by: refused) }
        let (seconds, attoseconds) = duration.components
        batchDuration.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        values.withLock { $0.lastStoreContact = .now }
    }

    func recordFileSize(_ bytes: Int) { fileSize.record(bytes) }

    func recordRepublished(_ paths: Int) { republished.increment(by: paths) }

    func recordRetry(_ error: any Error) {
        retries[Self.retryClass(error)]?.increment()
    }

    /// `component` ("worker vm:17:4242", "coordinator") is ready, or not and why.
    func setReady(_ component: String, notReady reason: String? = nil) {
        values.withLock { $0.readiness[component] = .some(reason) }
    }

    func setLag(_ lag: Int?, worker: String) { values.withLock { $0.lags[worker] = lag } }
    func storeContacted() { values.withLock { $0.lastStoreContact = .now } }
    /// A lease heartbeat of this coordinator.
    func heartbeat() { values.withLock { $0.lastHeartbeat = .now; $0.lastStoreContact = .now } }
    /// A heartbeat of a worker of this process in `filefleet.workers`.
    func workerHeartbeat() { values.withLock { $0.lastWorkerBeat = .now; $0.lastStoreContact = .now } }
    func setLeaseToken(_ token: Int64) { gauge("filefleet_lease_token").set(token) }

    func setRemaining(_ remaining: Int, done: Int) {
        gauge("filefleet_run_planned_paths").set(remaining + done)
        gauge("filefleet_run_done_paths").set(done)
        gauge("filefleet_run_remaining").set(remaining)
    }

    private func gauge(_ name: String) -> Meter {
        gauges.withLock { g in
            if let meter = g[name] { return meter }
            let meter = Meter(label: name, factory: factory)
            g[name] = meter
            return meter
        }
    }

    /// Records that `what` began and must end within `bound`, else the process is stuck.
    func began(_ key: String, _ what: String, bound: Duration) {
        values.withLock { $0.pending[key] = (.now, bound, what) }
    }

    func ended(_ key: String) { _ = values.withLock { v in v.pending.removeValue(forKey: key) } }

    /// Why the process is not alive (`/healthz`): something it began is past its bound, so only a
    /// restart frees it (a read that hangs on a dead mount, a batch its cancellation cannot end).
    /// Nil while alive.
    public var stuck: String? {
        let now = ContinuousClock.now
        return values.withLock { v in
            v.pending.values.filter { now - $0.since > $0.bound }.min { $0.since < $1.since }
                .map { "\($0.what) running for \(Int((now - $0.since).seconds)) s, past its bound of \(Int($0.bound.seconds)) s" }
        }
    }

    /// Ready: every component says so, and Postgres answered within the last 15 s.
    public var isReady: Bool { readiness.ready }

    /// Whether the process is ready, and a line per component saying which is not and why
    /// (`/readyz`'s body): from memory, never a call to a server.
    public var readiness: (ready: Bool, text: String) {
        let now = ContinuousClock.now
        return values.withLock { v in
            var lines = v.readiness.sorted { $0.key < $1.key }.map { name, reason in
                reason.map { "\(name): not ready: \($0)" } ?? "\(name): ready"
            }
            var ready = !v.readiness.isEmpty && v.readiness.values.allSatisfy { $0 == nil }
            if v.readiness.isEmpty { lines.append("nothing started yet") }
            switch v.lastStoreContact.map({ now - $0 }) {
            case let age? where age < .seconds(15):
                lines.append("postgres: answered \(String(format: "%.1f", age.seconds)) s ago")
            case let age?:
                lines.append("postgres: not ready: no answer for \(Int(age.seconds)) s")
                ready = false
            case nil:
                lines.append("postgres: not ready: not reached yet")
                ready = false
            }
            return (ready, lines.joined(separator: "\n") + "\n")
        }
    }

    /// The Prometheus text of `/metrics`. Values that are ages (heartbeats) and the process's
    /// readiness and lag are set as of now first.
    public func prometheus() -> String {
        let now = ContinuousClock.now
        let v = values.withLock { $0 }
        if let beat = v.lastHeartbeat { gauge("filefleet_lease_heartbeat_age_seconds").set((now - beat).seconds) }
        if let beat = v.lastWorkerBeat { gauge("filefleet_worker_heartbeat_age_seconds").set((now - beat).seconds) }
        if !v.lags.isEmpty { gauge("filefleet_consumer_lag").set(v.lags.values.reduce(0, +)) }
        gauge("filefleet_ready").set(isReady ? 1 : 0)
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    static let retryClasses = ["connection", "too_many_connections", "server_shutdown", "serialization",
                               "pool_timeout", "other"]

    static func retryClass(_ error: any Error) -> String {
        if error is PostgresPoolError { return "pool_timeout" }
        guard let error = error as? PostgresError else { return "other" }
        let code = error.code.rawValue
        if code.hasPrefix("08") { return "connection" }
        if code == "53300" { return "too_many_connections" }
        if code.hasPrefix("57P") { return "server_shutdown" }
        if code == "40001" || code == "40P01" { return "serialization" }
        return "other"
    }
}

extension FleetMetrics {
    /// Makes this instance's registry the process's swift-metrics backend. Once per process (the
    /// CLI's command does it for the metrics it serves).
    public func bootstrapMetricsSystem() {
        MetricsSystem.bootstrap(factory)
    }
}
