import FleetPostgres
import Foundation
import Synchronization

/// What a worker or a coordinator exposes on `/metrics` and `/readyz` (SPEC §7). Fixed label sets;
/// written as Prometheus text by hand (a handful of counters need no metrics library).
public final class FleetMetrics: Sendable {
    struct Values {
        var files: [String: Int] = ["imported": 0, "unchanged": 0, "deleted": 0, "failed": 0]
        var refused = 0
        var batches = 0
        var batchSeconds = 0.0
        var retries: [String: Int] = [:]
        var runRemaining: Int?
        var lastHeartbeat: ContinuousClock.Instant?
        var lastStoreContact: ContinuousClock.Instant?
        /// Each component of the process (each in-process worker, the coordinator) and why it
        /// is not ready, nil when it is.
        var readiness: [String: String?] = [:]
        /// Each consumer's lag (in-process workers share one FleetMetrics), where known.
        var lags: [String: Int] = [:]
        /// (seconds since start, files done) every few seconds, for the status page's chart.
        var samples: [(Double, Int)] = []
        /// What may hang (a batch, an abandoned read), by key: when it began and how long it may take.
        var pending: [String: (since: ContinuousClock.Instant, bound: Duration, what: String)] = [:]
    }

    private let values = Mutex(Values())
    private let started = ContinuousClock.now

    public init() {}

    func recordBatch(_ counts: OutcomeCounts, refused: Int, duration: Duration) {
        values.withLock { v in
            v.files["imported", default: 0] += counts.imported
            v.files["unchanged", default: 0] += counts.unchanged
            v.files["deleted", default: 0] += counts.deleted
            v.files["failed", default: 0] += counts.failed
            v.refused += refused
            v.batches += 1
            v.batchSeconds += duration.seconds
            v.lastStoreContact = .now
        }
        sample(done: values.withLock { $0.files.values.reduce(0, +) })
    }

    func recordRetry(_ error: any Error) {
        let kind = Self.retryClass(error)
        values.withLock { $0.retries[kind, default: 0] += 1 }
    }

    /// `component` ("worker vm:17:4242", "coordinator") is ready, or not and why.
    func setReady(_ component: String, notReady reason: String? = nil) {
        values.withLock { $0.readiness[component] = .some(reason) }
    }
    func setLag(_ lag: Int?, worker: String) { values.withLock { $0.lags[worker] = lag } }
    func storeContacted() { values.withLock { $0.lastStoreContact = .now } }
    func heartbeat() { values.withLock { $0.lastHeartbeat = .now; $0.lastStoreContact = .now } }
    func setRemaining(_ remaining: Int, done: Int) {
        values.withLock { $0.runRemaining = remaining }
        sample(done: done)
    }

    /// Keeps one (time, done) sample every 2 s or more, the newest 300.
    private func sample(done: Int) {
        let elapsed = (ContinuousClock.now - started).seconds
        values.withLock { v in
            if v.samples.last.map({ elapsed - $0.0 >= 2 }) ?? true { v.samples.append((elapsed, done)) }
            if v.samples.count > 300 { v.samples.removeFirst(v.samples.count - 300) }
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

    /// Files per second between samples, newest last (at most 300 samples).
    public var throughput: [Double] {
        let samples = values.withLock { $0.samples }
        return zip(samples.dropFirst(), samples).map { new, old in Double(new.1 - old.1) / max(0.001, new.0 - old.0) }
    }

    public func prometheus() -> String {
        let v = values.withLock { $0 }
        var out = "# HELP filefleet_files_total Files this process brought to their state, by outcome.\n"
        out += "# TYPE filefleet_files_total counter\n"
        for outcome in ["imported", "unchanged", "deleted", "failed"] {
            out += "filefleet_files_total{outcome=\"\(outcome)\"} \(v.files[outcome] ?? 0)\n"
        }
        out += "# HELP filefleet_messages_refused_total Messages refused: undecodable, forged, unknown run.\n"
        out += "# TYPE filefleet_messages_refused_total counter\nfilefleet_messages_refused_total \(v.refused)\n"
        out += "# HELP filefleet_batch_duration_seconds Time to import and commit a batch.\n"
        out += "# TYPE filefleet_batch_duration_seconds summary\n"
        out += "filefleet_batch_duration_seconds_sum \(v.batchSeconds)\nfilefleet_batch_duration_seconds_count \(v.batches)\n"
        out += "# HELP filefleet_retries_total Failed attempts that were retried, by class.\n"
        out += "# TYPE filefleet_retries_total counter\n"
        for kind in Self.retryClasses { out += "filefleet_retries_total{class=\"\(kind)\"} \(v.retries[kind] ?? 0)\n" }
        if let remaining = v.runRemaining {
            out += "# HELP filefleet_run_remaining Planned paths of the run without a checkpoint.\n"
            out += "# TYPE filefleet_run_remaining gauge\nfilefleet_run_remaining \(remaining)\n"
        }
        if let beat = v.lastHeartbeat {
            out += "# HELP filefleet_lease_heartbeat_age_seconds Time since the lease's last heartbeat.\n"
            out += "# TYPE filefleet_lease_heartbeat_age_seconds gauge\n"
            out += "filefleet_lease_heartbeat_age_seconds \((ContinuousClock.now - beat).seconds)\n"
        }
        if !v.lags.isEmpty {
            out += "# HELP filefleet_consumer_lag Messages of this process's partitions not yet taken for import (high watermark as of the last fetch).\n"
            out += "# TYPE filefleet_consumer_lag gauge\nfilefleet_consumer_lag \(v.lags.values.reduce(0, +))\n"
        }
        out += "# HELP filefleet_ready 1 when connected and not paused.\n# TYPE filefleet_ready gauge\n"
        out += "filefleet_ready \(isReady ? 1 : 0)\n"
        return out
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
