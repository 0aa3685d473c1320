import ArgumentParser
import FileFleet
import Foundation

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a stateless worker until SIGTERM/SIGINT, then drain and exit 0.",
        discussion: "Exit codes: 0 drained, 2 usage, 143 the batch in flight missed --drain-timeout and was rolled back.")

    @Option(help: "Files read and parsed at once (default: the cores).") var concurrency: Int?
    @Option(help: "Paths per batch and per Postgres transaction (default: 500).") var batchSize: Int?
    @Option(help: "How long to wait to fill a batch, in milliseconds (default: 50).") var batchWaitMs: Int?
    @Option(help: "Seconds to finish the in-flight batch after SIGTERM (default: 20).") var drainTimeout: Double?
    @Option(help: "Seconds a batch may take before it is rolled back and its partitions handed on (default: 120; a file read gets half).")
    var batchTimeout: Double?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var httpOptions: HTTPOptions
    @OptionGroup var logging: LogOptions

    func run() async throws {
        try await withUsageErrors(logging: logging) {
            let settings = try await Servers.forTools(connection)
            var options = WorkerOptions()
            if let concurrency { guard concurrency > 0 else { throw UsageError("--concurrency must be positive") }; options.concurrency = concurrency }
            if let batchSize { guard batchSize > 0 else { throw UsageError("--batch-size must be positive") }; options.batchSize = batchSize }
            if let batchWaitMs { guard batchWaitMs >= 0 else { throw UsageError("--batch-wait-ms must be ≥ 0") }; options.batchWait = .milliseconds(batchWaitMs) }
            if let drainTimeout { guard drainTimeout > 0 else { throw UsageError("--drain-timeout must be positive") }; options.drainTimeout = .milliseconds(Int64(drainTimeout * 1000)) }
            if let batchTimeout { guard batchTimeout > 0 else { throw UsageError("--batch-timeout must be positive") }; options.batchTimeout = .milliseconds(Int64(batchTimeout * 1000)) }
            let worker = FileFleet.Worker(settings: settings, options: options)
            worker.metrics.bootstrapMetricsSystem()
            let http = try httpOptions.start(settings: settings, metrics: worker.metrics)
            Log(component: "worker").event("started", ["id": worker.id, "topic": settings.topic, "group": settings.group])
            do {
                try await FleetServices.runWorker(worker, http: http)
            } catch is DrainTimeout {
                Log(component: "worker").event("drain_timeout", ["id": worker.id], level: .error)
                throw ExitCode(143)
            }
            let counts = worker.counts
            Log(component: "worker").event("stopped", ["id": worker.id, "imported": String(counts.imported),
                                                       "unchanged": String(counts.unchanged), "deleted": String(counts.deleted),
                                                       "failed": String(counts.failed), "refused": String(worker.refused)])
        }
    }
}
