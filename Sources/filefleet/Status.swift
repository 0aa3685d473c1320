import ArgumentParser
import FileFleet
import Foundation

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show runs, progress, leases, live workers and the newest failures, per source.")

    @Option(help: "Only this source.") var sourceId: String?
    @Flag(help: "Print JSON instead of a table.") var json = false
    @Flag(help: "Refresh every --interval seconds until interrupted (a JSON line each time with --json).")
    var watch = false
    @Option(help: "Seconds between refreshes of --watch.") var interval: Double = 2
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await withUsageErrors {
            guard interval > 0 else { throw UsageError("--interval must be positive, not \(interval)") }
            let database = try await Servers.database(connection)
            try await database.migrate()
            guard watch else { return try await show(database) }
            while true {
                if !json { print("\u{1B}[H\u{1B}[2J" + "filefleet status, every \(interval) s: \(Date())\n") }
                do {
                    try await show(database)
                } catch {
                    // The database away for a moment is something to watch, not a reason to stop.
                    print("cannot read the status: \(FleetProcess.redacted("\(error)"))")
                }
                fflush(nil)  // each refresh reaches a pipe at once
                try await Task.sleep(for: .seconds(interval))
            }
        }
    }

    private func show(_ database: FleetDatabase) async throws {
        let report = try await database.status(sourceID: sourceId)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(Self.render(report), terminator: "")
        }
    }

    static func render(_ report: StatusReport) -> String {
        var out = ""
        let header = ["SOURCE", "RUN", "STATE", "DONE/PLANNED", "FAILED", "RATE/s", "ETA", "LEASE HOLDER", "TOKEN", "BEAT AGE"]
        var rows: [[String]] = []
        for source in report.sources {
            let run = source.run
            let lease = source.lease
            rows.append([source.id, run.map { String($0.id) } ?? "-", run?.state ?? "never run",
                         run.map { "\($0.done)/\($0.planned)" } ?? "-", run.map { String($0.failed) } ?? "-",
                         run.map { String(format: "%.0f", $0.rate) } ?? "-",
                         run?.eta_seconds.map { String(format: "%.0fs", $0) } ?? "-",
                         lease?.holder ?? "-", lease.map { String($0.token) } ?? "-",
                         lease?.holder == nil ? "-" : lease?.heartbeat_age_seconds.map { String(format: "%.1fs", $0) } ?? "-"])
        }
        out += table(header, rows)
        for source in report.sources {
            guard let stop = source.run?.stopped else { continue }
            out += "\n\(source.id): the last sync of run \(source.run!.id) aborted at \(stop.at): \(stop.reason)"
                + (stop.error.map { ": \($0)" } ?? "") + "\n"
        }
        out += "\nWORKERS (\(report.workers.count) live)\n"
        out += table(["ID", "STATE", "FILES", "BEAT AGE"], report.workers.map {
            [$0.id, $0.state, String($0.imported), String(format: "%.1fs", $0.heartbeat_age_seconds)]
        })
        let failures = report.sources.flatMap { source in source.failures.map { (source.id, $0) } }
        if !failures.isEmpty {
            out += "\nNEWEST FAILURES\n"
            out += table(["SOURCE", "PATH", "REASON", "ATTEMPTS", "MESSAGE"], failures.map {
                [$0.0, $0.1.path.debugDescription, $0.1.reason, String($0.1.attempts), $0.1.message]
            })
        }
        return out
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
