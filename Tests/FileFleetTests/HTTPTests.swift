@testable import FileFleet
import FleetPostgres
import Foundation
import Testing
import TestSupport

/// `--http` (SPEC §7): health, readiness, Prometheus text and the status page, over real HTTP.
@Suite struct HTTPTests {
    func get(_ port: Int, _ path: String) async throws -> (status: Int, body: String) {
        let output = try await runBlocking {
            try Command.run("/usr/bin/env", ["curl", "-s", "-m", "10", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
        }
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.removeLast()) ?? 0
        return (status, lines.joined(separator: "\n"))
    }

    /// `/readyz` combines the process's components and names the one that is not ready: an
    /// in-process worker paused after failed batches makes the process 503, and 200 again when
    /// it resumes; a Postgres that has not answered for 15 s is named too.
    @Test func readyzNamesTheComponentThatIsNotReady() async throws {
        let settings = FleetSettings(postgresURL: "postgresql://nobody@127.0.0.1:1/none", kafka: .init(brokers: "127.0.0.1:1"))
        let metrics = FleetMetrics()
        let server = try HTTPServer(address: "127.0.0.1:0", handler: StatusPage.handler(settings: settings, metrics: metrics))
        defer { server.stop() }
        metrics.setReady("worker a")
        metrics.setReady("worker b")
        metrics.storeContacted()
        let ready = try await get(server.port, "/readyz")
        #expect(ready.status == 200 && ready.body.contains("worker a: ready") && ready.body.contains("worker b: ready"), "\(ready.body)")

        metrics.setReady("worker b", notReady: "paused: 3 consecutive batches failed, others make progress")
        metrics.storeContacted()
        let paused = try await get(server.port, "/readyz")
        #expect(paused.status == 503, "\(paused.body)")
        #expect(paused.body.contains("worker b: not ready: paused: 3 consecutive batches failed"), "\(paused.body)")
        #expect(paused.body.contains("worker a: ready"), "\(paused.body)")

        metrics.setReady("worker b")
        // Postgres answered just now: on a loaded box the requests above can take longer than
        // the 15 s after which an unanswered Postgres makes the process not ready (seen: 20 s).
        metrics.storeContacted()
        let resumed = try await get(server.port, "/readyz")
        #expect(resumed.status == 200, "\(resumed.body)")
    }

    @Test func httpEndpointsServeHealthReadinessMetricsAndTheStatusPage() async throws {
        let environment = try await TestEnvironment.shared()
        let schema = Schema(try await environment.makeSchema().name)
        let pool = PostgresPool(url: environment.postgresURL, maxConnections: 1)
        try await schema.migrate(pool)
        await pool.close()
        var settings = FleetSettings(postgresURL: environment.postgresURL,
                                     kafka: .init(brokers: environment.kafkaBrokers))
        settings.schema = schema
        let metrics = FleetMetrics()
        let server = try HTTPServer(address: "127.0.0.1:0", handler: StatusPage.handler(settings: settings, metrics: metrics))
        defer { server.stop() }

        #expect(try await get(server.port, "/healthz") == (200, "ok\n"))
        #expect(try await get(server.port, "/readyz").status == 503)  // not connected to anything yet
        let metricsText = try await get(server.port, "/metrics")
        #expect(metricsText.status == 200)
        #expect(metricsText.body.contains("filefleet_files_total{outcome=\"imported\"} 0"))
        #expect(metricsText.body.contains("filefleet_ready 0"))
        #expect(!metricsText.body.contains("filefleet_consumer_lag"))  // no consumer: unknown, not 0
        // Through swift-metrics: a histogram of batch times with buckets, and the build.
        metrics.recordBatch(OutcomeCounts(imported: 3), refused: 1, duration: .milliseconds(30))
        metrics.recordFileSize(2000)
        let histogram = try await get(server.port, "/metrics").body
        #expect(histogram.contains("filefleet_batch_duration_seconds_bucket{le=\"0.05\"} 1"), "\(histogram)")
        #expect(histogram.contains("filefleet_batch_duration_seconds_count 1"), "\(histogram)")
        #expect(histogram.contains("filefleet_file_size_bytes_bucket{le=\"4096.0\"} 1"), "\(histogram)")
        #expect(histogram.contains("filefleet_files_total{outcome=\"imported\"} 3"), "\(histogram)")
        #expect(histogram.contains("filefleet_build_info{version=\"\(FileFleetVersion.string)\"} 1.0"), "\(histogram)")
        // In-process workers share the metrics: their lags add up; a closed consumer drops out.
        metrics.setLag(7, worker: "a")
        metrics.setLag(5, worker: "b")
        #expect(try await get(server.port, "/metrics").body.contains("\nfilefleet_consumer_lag 12.0\n"))
        metrics.setLag(nil, worker: "a")
        #expect(try await get(server.port, "/metrics").body.contains("\nfilefleet_consumer_lag 5.0\n"))
        let page = try await get(server.port, "/")
        #expect(page.status == 200)
        #expect(page.body.contains("<h1>FileFleet</h1>"))
        #expect(page.body.contains("http-equiv=\"refresh\""))
        #expect(!page.body.contains(environment.postgresURL))
        #expect(try await get(server.port, "/nope").status == 404)

        #expect(throws: UsageError.self) { try HTTPServer(address: "not-an-address", handler: { _ in .init(body: "") }) }
        #expect(throws: UsageError.self) { try HTTPServer(address: "127.0.0.1:\(server.port)", handler: { _ in .init(body: "") }) }
    }
}
