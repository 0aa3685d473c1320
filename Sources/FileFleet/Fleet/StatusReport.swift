import Foundation

/// What `filefleet status` shows (SPEC §4), read in one go.
public struct StatusReport: Sendable, Codable {
    public struct Source: Sendable, Codable {
        public var id: String
        public var root: String
        public var mode: String
        public var bookmark: String?
        public var run: Run?
        public var lease: Lease?
        public var failures: [Failure]
    }

    public struct Run: Sendable, Codable {
        public var id: Int64
        public var state: String
        public var planned: Int
        public var done: Int
        public var failed: Int
        public var started_at: String
        public var finished_at: String?
        /// Files per second over the last minute of checkpoints.
        public var rate: Double
        public var eta_seconds: Double?
        /// Why the last sync of this open run aborted (`reason`, `error`, `at`), until one resumes it.
        public var stopped: Stop?
    }

    public struct Stop: Sendable, Codable {
        public var reason: String
        public var error: String?
        public var at: String
    }

    public struct Lease: Sendable, Codable {
        public var holder: String?
        public var token: Int64
        public var heartbeat_age_seconds: Double?
        public var expires_in_seconds: Double?
    }

    public struct Worker: Sendable, Codable {
        public var id: String
        public var state: String
        public var imported: Int
        public var heartbeat_age_seconds: Double
        /// Files per second since the worker started (its own, from its heartbeats).
        public var rate: Double
    }

    /// One of the newest runs of any source.
    public struct PastRun: Sendable, Codable {
        public var id: Int64
        public var source_id: String
        public var state: String
        public var planned: Int
        public var done: Int
        public var failed: Int
        public var seconds: Double
        public var files_per_second: Double
    }

    public struct Failure: Sendable, Codable {
        public var path: String
        public var reason: String
        public var message: String
        public var attempts: Int
        public var last_seen: String
    }

    public var sources: [Source]
    public var workers: [Worker]
    /// The newest `historyLength` runs, newest first.
    public var runs: [PastRun]

    static let historyLength = 20

    /// Workers whose heartbeat is older than this are not shown as live.
    static let liveWorkerWindow = 30.0
}
