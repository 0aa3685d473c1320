import Foundation

/// The outcome of one `sync` (SPEC §4): printed as JSON with `--json`, in words otherwise.
public struct SyncSummary: Sendable, Codable, Equatable {
    public enum Status: String, Sendable, Codable {
        case completed, skipped, completed_with_failures, aborted, interrupted
    }

    public var status: Status
    public var source_id: String
    public var run_id: Int64?
    public var mode: String
    public var planned = 0
    public var resumed = 0
    public var imported = 0
    public var unchanged = 0
    public var deleted = 0
    public var failed = 0
    public var elapsed_seconds = 0.0
    public var reason: String?
    /// An aborted run's error: its class and message, without secrets.
    public var error: String?

    public init(status: Status, sourceID: String, mode: String) {
        self.status = status
        self.source_id = sourceID
        self.mode = mode
    }

    /// One JSON object on one line; `reason` is written as null when absent.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var text = String(decoding: try! encoder.encode(self), as: UTF8.self)
        if reason == nil { text.insert(contentsOf: ",\"reason\":null", at: text.index(before: text.endIndex)) }
        if run_id == nil { text.insert(contentsOf: ",\"run_id\":null", at: text.index(before: text.endIndex)) }
        if error == nil { text.insert(contentsOf: ",\"error\":null", at: text.index(before: text.endIndex)) }
        return text
    }

    /// The process exit code (SPEC §4) for this summary.
    public var exitCode: Int32 {
        switch status {
        case .completed, .skipped: 0
        case .completed_with_failures: 3
        case .aborted: reason == NoWorkers.reason ? 5 : reason == RunStop.storeConfiguration ? 2 : 4
        case .interrupted: reason == "SIGINT" ? 130 : 143
        }
    }

    public var words: String {
        switch status {
        case .skipped:
            return "skipped \(source_id): \(reason ?? "another coordinator holds the lease")"
        default:
            var line = "\(status.rawValue): \(source_id) run \(run_id.map(String.init) ?? "-") (\(mode)): "
            line += "\(planned) planned, \(resumed) resumed, \(imported) imported, \(unchanged) unchanged, "
            line += "\(deleted) deleted, \(failed) failed in \(String(format: "%.1f", elapsed_seconds)) s"
            if let reason { line += " — \(reason)" + (reason == NoWorkers.reason ? ": \(NoWorkers.hint)" : "") }
            if let error, reason != NoWorkers.reason { line += ": \(error)" }
            return line
        }
    }
}
