import FleetPostgres
import Foundation
import Synchronization

/// The endpoints of `--http` (SPEC §7): `/healthz`, `/readyz`, `/metrics`, and `/`, a status page
/// that refreshes itself: progress per source, this process's recent throughput, the lease, live
/// workers and the newest failures.
public enum StatusPage {
    /// How long the status page waits for Postgres before it shows an error box instead.
    static let readTimeout: Duration = .seconds(2)

    public static func handler(settings: FleetSettings, metrics: FleetMetrics) -> HTTPServer.Handler {
        // Its own two connections: a page never takes the process's pool from its work, and
        // while Postgres does not answer, the page's requests wait at most `readTimeout` each.
        let pool = PostgresPool(url: settings.postgresURL, maxConnections: 2, acquireTimeout: readTimeout,
                                idleTimeout: .seconds(30), maxWaiters: 32)
        return { path in
            switch path {
            case "/healthz":
                return metrics.stuck.map { HTTPServer.Response(status: 503, body: "stuck: \($0)\n") }
                    ?? HTTPServer.Response(body: "ok\n")
            case "/readyz":
                let (ready, text) = metrics.readiness
                return HTTPServer.Response(status: ready ? 200 : 503, body: (ready ? "ready\n" : "not ready\n") + Redact.scrub(text))
            case "/metrics":
                return HTTPServer.Response(contentType: "text/plain; version=0.0.4", body: metrics.prometheus())
            case "/":
                let report: Result<StatusReport, any Error> = await within(readTimeout) {
                    try await pool.withConnection { c in try await StatusReport.read(schema: settings.schema, sourceID: nil, on: c) }
                }
                return HTTPServer.Response(contentType: "text/html; charset=utf-8",
                                           body: html(report, throughput: metrics.throughput))
            default:
                return HTTPServer.Response(status: 404, body: "not found\n")
            }
        }
    }

    /// `body`'s result, or a timeout error once `limit` has passed (the body is cancelled and
    /// left to end on its own: a connect that the network swallows ends at libpq's timeout).
    static func within<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async -> Result<T, any Error> {
        let result = Mutex<Result<T, any Error>?>(nil)
        let work = Task {
            let value: Result<T, any Error>
            do { value = .success(try await body()) } catch { value = .failure(error) }
            result.withLock { if $0 == nil { $0 = value } }
        }
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline, result.withLock({ $0 }) == nil {
            try? await Task.sleep(for: .milliseconds(20))
        }
        work.cancel()
        return result.withLock { r in
            if r == nil { r = .failure(StatusTimeout(limit: limit)) }
            return r!
        }
    }

    struct StatusTimeout: Error, CustomStringConvertible {
        let limit: Duration
        var description: String { "Postgres did not answer within \(Int(limit.components.seconds)) s" }
    }

    static func html(_ result: Result<StatusReport, any Error>, throughput: [Double]) -> String {
        var page = """
            <!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
            <title>FileFleet</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:left}
            progress{width:16em}</style></head><body><h1>FileFleet</h1>
            """
        let report: StatusReport
        switch result {
        case .success(let value):
            report = value
        case .failure(let error):
            return page + "<p class=\"error\" style=\"border:2px solid #c00;padding:1em\">Cannot read the status: "
                + escape(Redact.scrub("\(error)")) + ". The page refreshes itself.</p></body></html>"
        }
        page += "<h2>Sources</h2><table><tr><th>source</th><th>run</th><th>state</th><th>progress</th><th>failed</th><th>files/s</th><th>ETA</th></tr>"
        for source in report.sources {
            let run = source.run
            page += "<tr><td>\(escape(source.id))</td><td>\(run.map { String($0.id) } ?? "-")</td>"
            page += "<td>\(escape(run?.state ?? "never run"))</td>"
            page += "<td><progress max=\"\(max(1, run?.planned ?? 1))\" value=\"\(run?.done ?? 0)\"></progress> "
            page += "\(run?.done ?? 0)/\(run?.planned ?? 0)</td><td>\(run?.failed ?? 0)</td>"
            page += "<td>\(String(format: "%.0f", run?.rate ?? 0))</td>"
            page += "<td>\(run?.eta_seconds.map { String(format: "%.0f s", $0) } ?? "-")</td></tr>"
        }
        page += "</table><h2>Throughput of this process</h2>" + sparkline(throughput)
        page += "<h2>Leases</h2><table><tr><th>source</th><th>holder</th><th>token</th><th>heartbeat age</th></tr>"
        for source in report.sources {
            guard let lease = source.lease else { continue }
            page += "<tr><td>\(escape(source.id))</td><td>\(escape(lease.holder ?? "-"))</td><td>\(lease.token)</td>"
            page += "<td>\(lease.holder == nil ? "-" : lease.heartbeat_age_seconds.map { String(format: "%.1f s", $0) } ?? "-")</td></tr>"
        }
        page += "</table><h2>Live workers (\(report.workers.count))</h2><table><tr><th>id</th><th>state</th><th>files</th><th>heartbeat age</th></tr>"
        for worker in report.workers {
            page += "<tr><td>\(escape(worker.id))</td><td>\(escape(worker.state))</td><td>\(worker.imported)</td>"
            page += "<td>\(String(format: "%.1f s", worker.heartbeat_age_seconds))</td></tr>"
        }
        page += "</table><h2>Newest failures</h2><table><tr><th>source</th><th>path</th><th>reason</th><th>attempts</th><th>message</th></tr>"
        for source in report.sources {
            for failure in source.failures {
                page += "<tr><td>\(escape(source.id))</td><td>\(escape(failure.path))</td><td>\(escape(failure.reason))</td>"
                page += "<td>\(failure.attempts)</td><td>\(escape(failure.message))</td></tr>"
            }
        }
        return page + "</table></body></html>"
    }

    /// Files per second as a small inline SVG polyline.
    static func sparkline(_ rates: [Double]) -> String {
        guard rates.count > 1, let top = rates.max(), top > 0 else { return "<p>no samples yet</p>" }
        let width = 600.0, height = 80.0
        let step = width / Double(rates.count - 1)
        let points = rates.enumerated().map { i, rate in
            String(format: "%.1f,%.1f", Double(i) * step, height - rate / top * height)
        }.joined(separator: " ")
        return "<svg width=\"\(Int(width))\" height=\"\(Int(height))\"><polyline fill=\"none\" stroke=\"#36c\" " +
            "stroke-width=\"2\" points=\"\(points)\"/></svg><p>peak \(String(format: "%.0f", top)) files/s</p>"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
