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
        // In-process workers share the metrics: their lags add up; a closed consumer drops out.
        metrics.setLag(7, worker: "a")
        metrics.setLag(5, worker: "b")
        #expect(try await get(server.port, "/metrics").body.contains("\nfilefleet_consumer_lag 12\n"))
        metrics.setLag(nil, worker: "a")
        #expect(try await get(server.port, "/metrics").body.contains("\nfilefleet_consumer_lag 5\n"))
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
