import FleetPostgres
import Foundation
public import Logging

/// How a process writes its log lines: one line per event on stderr, secrets scrubbed.
public enum LogLines {
    public enum Format: String, CaseIterable, Sendable {
        /// `time=… component=… event=… key=value …`, values quoted when they need it.
        case logfmt
        /// One JSON object per line: `time`, `level`, `component`, `event` and the fields.
        case json
    }

    /// Once per process, before the first line: every `Logger` made after writes this way.
    public static func bootstrap(format: Format, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(component: label, format: format)
            handler.logLevel = level
            return handler
        }
    }

    /// `bootstrap` from the words of `--log-format` and `--log-level` (nil: logfmt, info).
    public static func bootstrap(format: String?, level: String?) throws(UsageError) {
        guard let parsedFormat = Format(rawValue: format ?? Format.logfmt.rawValue) else {
            throw UsageError("--log-format must be \(Format.allCases.map(\.rawValue).joined(separator: " or ")), not \(format!)")
        }
        guard let parsedLevel = Logger.Level(rawValue: level ?? Logger.Level.info.rawValue) else {
            throw UsageError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), not \(level!)")
        }
        bootstrap(format: parsedFormat, level: parsedLevel)
    }
}
