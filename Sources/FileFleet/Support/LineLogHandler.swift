import FleetPostgres
import Foundation
import Logging

/// The handler behind both formats.
struct LineLogHandler: LogHandler {
    let component: String
    let format: LogLines.Format
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(component: String, format: LogLines.Format) {
        self.component = component
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let more = event.metadata { fields.merge(more) { $1 } }
        if let error = event.error { fields["error"] = .string("\(error)") }
        let line = Self.line(time: Self.now(), level: event.level, component: component, event: event.message.description,
                             fields: fields.mapValues(\.description), format: format)
        FileHandle.standardError.write(Data((Redact.scrub(line) + "\n").utf8))
    }

    static func line(time: String, level: Logger.Level, component: String, event: String, fields: [String: String],
                     format: LogLines.Format) -> String {
        switch format {
        case .logfmt:
            // The level only where it says more than "info", so that the usual line stays as it was.
            var line = "time=\(time)" + (level == .info ? "" : " level=\(level)") + " component=\(component) event=\(event)"
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(quote(value))" }
            return line
        case .json:
            var object = fields
            (object["time"], object["level"], object["component"], object["event"]) = (time, "\(level)", component, event)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(object)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }
    }

    /// UTC with milliseconds, `2026-12-07T13:15:49.656Z`.
    static func now() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), now.tv_nsec / 1_000_000)
    }

    static func quote(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) else {
            return value
        }
        return "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}
