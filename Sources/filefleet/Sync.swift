import ArgumentParser
import FileFleet
import Foundation
import Synchronization

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Coordinate one run for SOURCE until it completes.",
        discussion: """
            SOURCE is a directory; a git work tree is synced incrementally from its bookmark commit. \
            With neither --postgres nor --kafka, the run uses the embedded stack in --state-dir. \
            Exit codes: 0 completed or skipped (another live holder has the lease), 2 usage, \
            3 completed with quarantined failures, 4 aborted (lease lost, Postgres unavailable), \
            5 no worker took the work (start `filefleet worker`, or --workers N), 130/143 interrupted.
            """)

    @Argument(help: "The directory to import.") var source: String
    @Option(help: "Source id (default: the directory's base name).") var sourceId: String?
    @Option(help: "Only paths matching this glob (repeatable).") var include: [String] = []
    @Option(help: "Skip paths matching this glob (repeatable).") var exclude: [String] = []
    @Option(help: "In-process workers (default: 0 with Postgres and Kafka configured, the cores in embedded mode).")
    var workers: Int?
    @Flag(help: "Print the summary as one JSON object, the last line of stdout.") var json = false
    @Flag(help: "Allow a run to delete more than half of the source's documents (refused otherwise: an unmounted volume looks like that).")
    var allowMassDelete = false
    @Option(help: "Files larger than this are quarantined (default: 64 MiB).") var maxFileBytes: Int?
    @Option(help: "Attempts before a failing file is quarantined (default: 3).") var maxAttempts: Int?
    @Option(help: "Lease heartbeat interval in seconds (default: 5).") var heartbeat: Double?
    @Option(help: "Lease time to live in seconds (default: 30).") var leaseTtl: Double?
    @Option(help: "Takeover grace in seconds (default: 3 heartbeats).") var takeoverGrace: Double?
    @Option(help: "Republish remaining paths after this many seconds without progress (default: 30).")
    var stallWindow: Double?
    @Option(help: "With no in-process workers: seconds to wait for a live `filefleet worker` before exiting 5 (default: 30).")
    var noWorkerTimeout: Double?
    @Option(help: "Paths per batch and per Postgres transaction of the sync's own imports: its in-process workers and its direct import (default: 2000).")
    var batchSize: Int?
    @Option(help: "In-process workers: seconds a batch may take before it is rolled back (default: 120).")
    var batchTimeout: Double?
    @Option(help: "A run with at most this many paths left is imported by sync itself, without Kafka; a larger one, while its in-process workers join their group (default: 500; 0: always through the workers).")
    var directMax: Int?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var httpOptions: HTTPOptions
    @OptionGroup var logging: LogOptions

    func run() async throws {
        try await withUsageErrors(logging: logging) {
            let options = try syncOptions()
            let servers = try await Servers.forSync(connection, workers: workers)
            var resolved = options
            resolved.workers = servers.workers
            let progress = ProgressBar(enabled: isatty(2) == 1)
            let coordinator = Coordinator(settings: servers.settings,
                                          log: Log(component: "coordinator",
                                                   enabled: !servers.embedded || !progress.enabled || servers.workers == 0))
            coordinator.metrics.bootstrapMetricsSystem()
            let http: HTTPServer?
            do {
                http = try httpOptions.start(settings: servers.settings, metrics: coordinator.metrics)
            } catch {
                await servers.stop()
                throw error
            }
            let summary: SyncSummary
            do {
                summary = try await FleetServices.runSync(coordinator, source: source, options: resolved, http: http) {
                    progress.update($0)
                }
            } catch {
                progress.finish()
                await servers.stop()
                throw error
            }
            progress.finish()
            await servers.stop()
            if summary.status == .skipped { printError("filefleet: \(summary.words)") }
            if json {
                print(summary.json())
            } else if summary.status != .skipped {
                printError(summary.words)
            }
            if summary.exitCode != 0 { throw ExitCode(summary.exitCode) }
        }
    }

    func syncOptions() throws -> SyncOptions {
        var options = SyncOptions()
        options.sourceID = sourceId
        options.includes = include
        options.allowMassDelete = allowMassDelete
        options.excludes = exclude
        if let maxFileBytes {
            guard maxFileBytes > 0 else { throw UsageError("--max-file-bytes must be positive") }
            options.maxFileBytes = maxFileBytes
        }
        if let batchSize {
            guard batchSize > 0 else { throw UsageError("--batch-size must be positive") }
            options.batchSize = batchSize
        }
        if let directMax {
            guard directMax >= 0 else { throw UsageError("--direct-max must be ≥ 0") }
            options.directMax = directMax
        }
        if let maxAttempts {
            guard maxAttempts > 0 else { throw UsageError("--max-attempts must be positive") }
            options.maxAttempts = maxAttempts
        }
        func seconds(_ value: Double?, _ flag: String) throws -> Duration? {
            guard let value else { return nil }
            guard value > 0 else { throw UsageError("\(flag) must be a positive number of seconds") }
            return .milliseconds(Int64(value * 1000))
        }
        let beat = try seconds(heartbeat, "--heartbeat") ?? .seconds(5)
        options.lease = LeaseTiming(heartbeat: beat, ttl: try seconds(leaseTtl, "--lease-ttl") ?? .seconds(30),
                                    grace: try seconds(takeoverGrace, "--takeover-grace"))
        options.stallWindow = try seconds(stallWindow, "--stall-window") ?? options.stallWindow
        options.noWorkerTimeout = try seconds(noWorkerTimeout, "--no-worker-timeout") ?? options.noWorkerTimeout
        options.batchTimeout = try seconds(batchTimeout, "--batch-timeout") ?? options.batchTimeout
        if let sourceId, sourceId.isEmpty || sourceId.utf8.contains(UInt8(ascii: "/")) {
            throw UsageError("--source-id must be non-empty and without '/'")
        }
        return options
    }
}

/// done / planned, files/s and ETA on one stderr line, redrawn in place (only on a terminal).
final class ProgressBar: Sendable {
    let enabled: Bool
    private let state = Mutex<(start: ContinuousClock.Instant, drawn: Bool)>((ContinuousClock.now, false))

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ p: SyncProgress) {
        guard enabled, p.planned > 0 else { return }
        let elapsed = state.withLock { s in s.drawn = true; return (ContinuousClock.now - s.start) }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = seconds > 0 ? Double(p.done - p.resumed) / seconds : 0
        let fraction = Double(p.done) / Double(p.planned)
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let eta = rate > 0 ? String(format: "%.0fs", Double(p.planned - p.done) / rate) : "?"
        let line = String(format: "\r[%@] %d/%d  %.0f files/s  ETA %@   ", bar, p.done, p.planned, rate, eta)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        if enabled && state.withLock({ $0.drawn }) { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
