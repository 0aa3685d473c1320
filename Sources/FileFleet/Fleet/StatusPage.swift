import FleetPostgres
import Foundation
import Synchronization

/// The endpoints of `--http` (SPEC §7): `/healthz`, `/readyz`, `/metrics`, and `/`, a status page
/// that refreshes itself, read from the database (so it is the same whichever process serves it):
/// progress per source with its ETA, each current run's throughput over its life, the last runs,
/// the leases, live workers with their rates, and the newest failures with what to do.
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
                let snapshot: Result<Snapshot, any Error> = await within(readTimeout) {
                    try await pool.withConnection { c in try await read(settings, on: c) }
                }
                return HTTPServer.Response(contentType: "text/html; charset=utf-8", body: html(snapshot))
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

    /// What the page shows: the report, and each current run's throughput over its life.
    struct Snapshot: Sendable {
        var report: StatusReport
        var charts: [Int64: (slice: Double, rates: [Double])]
    }

    static func read(_ settings: FleetSettings, on c: PostgresConnection) async throws -> Snapshot {
        let report = try await StatusReport.read(schema: settings.schema, sourceID: nil, on: c)
        var charts: [Int64: (slice: Double, rates: [Double])] = [:]
        for run in report.sources.compactMap(\.run) {
            charts[run.id] = try await StatusReport.throughput(settings.schema, run: run.id, on: c)
        }
        return Snapshot(report: report, charts: charts)
    }

    /// What to do about a quarantined file, by reason.
    static let hints: [String: String] = [
        "too_large": "larger than --max-file-bytes: raise it, or --exclude the file",
        "unreadable": "the importing user cannot read it: fix its permissions; the next sync tries again",
        "unreadable_directory": "the importing user cannot list it: fix its permissions; its files come with the next sync",
        "read_timeout": "the read hung (a network mount, FUSE): check the filesystem; the next sync tries again",
        "invalid_name": "the name is not valid UTF-8: rename it",
        "path_too_long": "the path is longer than a key may be: shorten it",
        "rejected": "PostgreSQL refused the data (see the message): fix the file or the schema's constraint",
        "escapes_root": "a link that leads out of the source: it is not imported",
    ]

    static func html(_ result: Result<Snapshot, any Error>) -> String {
        var page = """
            <!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
            <title>FileFleet</title><style>body{font-family:sans-serif;margin:2em;color:#222}
            td,th{padding:3px 12px;text-align:left}th{border-bottom:1px solid #999}
            td.n{text-align:right;font-variant-numeric:tabular-nums}progress{width:16em}
            .error{border:2px solid #c00;padding:1em}svg.chart{background:#f6f8fb;border:1px solid #dde}</style>
            </head><body><h1>FileFleet</h1>
            """
        let snapshot: Snapshot
        switch result {
        case .success(let value):
            snapshot = value
        case .failure(let error):
            return page + "<p class=\"error\">Cannot read the status: "
                + escape(Redact.scrub("\(error)")) + ". The page refreshes itself.</p></body></html>"
        }
        let report = snapshot.report
        page += "<h2>Sources</h2><table id=\"sources\"><tr><th>source</th><th>run</th><th>state</th><th>progress</th>"
        page += "<th>failed</th><th>files/s</th><th>ETA</th></tr>"
        for source in report.sources {
            let run = source.run
            page += "<tr data-source=\"\(escape(source.id))\"><td>\(escape(source.id))</td><td class=\"run\">\(run.map { String($0.id) } ?? "-")</td>"
            page += "<td class=\"state\">\(escape(run?.state ?? "never run"))</td>"
            page += "<td><progress max=\"\(max(1, run?.planned ?? 1))\" value=\"\(run?.done ?? 0)\"></progress> "
            page += "<span class=\"done\">\(run?.done ?? 0)</span>/<span class=\"planned\">\(run?.planned ?? 0)</span></td>"
            page += "<td class=\"n failed\">\(run?.failed ?? 0)</td>"
            page += "<td class=\"n\">\(String(format: "%.0f", run?.rate ?? 0))</td>"
            page += "<td>\(run?.eta_seconds.map { String(format: "%.0f s", $0) } ?? "-")</td></tr>"
        }
        page += "</table>"
        for source in report.sources {
            guard let run = source.run, let chart = snapshot.charts[run.id] else { continue }
            page += "<h3>\(escape(source.id)), run \(run.id): files per second over the run</h3>" + svgChart(chart, run: run.id)
        }
        page += "<h2>Last runs</h2><table id=\"runs\"><tr><th>run</th><th>source</th><th>state</th><th>planned</th><th>done</th>"
        page += "<th>failed</th><th>duration</th><th>files/s</th></tr>"
        for run in report.runs {
            page += "<tr data-run=\"\(run.id)\"><td>\(run.id)</td><td>\(escape(run.source_id))</td><td>\(escape(run.state))</td>"
            page += "<td class=\"n planned\">\(run.planned)</td><td class=\"n done\">\(run.done)</td><td class=\"n failed\">\(run.failed)</td>"
            page += "<td class=\"n\">\(String(format: "%.1f s", run.seconds))</td>"
            page += "<td class=\"n\">\(String(format: "%.0f", run.files_per_second))</td></tr>"
        }
        page += "</table><h2>Leases</h2><table id=\"leases\"><tr><th>source</th><th>holder</th><th>token</th><th>heartbeat age</th></tr>"
        for source in report.sources {
            guard let lease = source.lease else { continue }
            page += "<tr data-source=\"\(escape(source.id))\"><td>\(escape(source.id))</td><td class=\"holder\">\(escape(lease.holder ?? "-"))</td>"
            page += "<td class=\"n token\">\(lease.token)</td>"
            page += "<td>\(lease.holder == nil ? "-" : lease.heartbeat_age_seconds.map { String(format: "%.1f s", $0) } ?? "-")</td></tr>"
        }
        page += "</table><h2>Live workers (\(report.workers.count))</h2><table id=\"workers\"><tr><th>id</th><th>state</th>"
        page += "<th>files</th><th>files/s</th><th>heartbeat age</th></tr>"
        for worker in report.workers {
            page += "<tr data-worker=\"\(escape(worker.id))\"><td>\(escape(worker.id))</td><td>\(escape(worker.state))</td>"
            page += "<td class=\"n imported\">\(worker.imported)</td><td class=\"n\">\(String(format: "%.0f", worker.rate))</td>"
            page += "<td class=\"n\">\(String(format: "%.1f s", worker.heartbeat_age_seconds))</td></tr>"
        }
        page += "</table><h2>Newest failures</h2><table id=\"failures\"><tr><th>source</th><th>path</th><th>reason</th>"
        page += "<th>attempts</th><th>message</th><th>what to do</th></tr>"
        for source in report.sources {
            for failure in source.failures {
                page += "<tr><td>\(escape(source.id))</td><td>\(escape(failure.path))</td><td class=\"reason\">\(escape(failure.reason))</td>"
                page += "<td class=\"n\">\(failure.attempts)</td><td>\(escape(failure.message))</td>"
                page += "<td>\(escape(hints[failure.reason] ?? "see the message; the next sync tries it again"))</td></tr>"
            }
        }
        return page + "</table></body></html>"
    }

    /// Files per second over a run as an inline SVG line chart with its scale.
    static func svgChart(_ chart: (slice: Double, rates: [Double]), run: Int64) -> String {
        let rates = chart.rates
        guard rates.count > 1, let top = rates.max(), top > 0 else { return "<p>too short to chart yet</p>" }
        let width = 600.0, height = 120.0
        let step = width / Double(rates.count - 1)
        let points = rates.enumerated().map { i, rate in
            String(format: "%.1f,%.1f", Double(i) * step, height - rate / top * (height - 10))
        }.joined(separator: " ")
        let total = chart.slice * Double(rates.count)
        return "<svg class=\"chart\" data-run=\"\(run)\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" "
            + "aria-label=\"files per second over run \(run)\"><polyline fill=\"none\" stroke=\"#36c\" stroke-width=\"2\" "
            + "points=\"\(points)\"/></svg><p>peak \(String(format: "%.0f", top)) files/s; "
            + "\(String(format: "%.1f", total)) s from the run's start to its last checkpoint</p>"
    }


    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
