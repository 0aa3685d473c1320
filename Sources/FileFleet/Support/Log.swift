import FleetPostgres
import Foundation

/// One line per event on stderr, `key=value` (SPEC §7). Values are quoted when they need it.
public struct Log: Sendable {
    public let component: String
    public var enabled = true

    public init(component: String, enabled: Bool = true) {
        self.component = component
        self.enabled = enabled
    }

    public func child(_ component: String) -> Log { Log(component: component, enabled: enabled) }

    public func event(_ name: String, _ fields: [String: String] = [:]) {
        guard enabled else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let time = String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                          Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), now.tv_nsec / 1_000_000)
        var line = "time=\(time) component=\(component) event=\(name)"
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            line += " \(key)=\(Self.quote(value))"
        }
        FileHandle.standardError.write(Data((Redact.scrub(line) + "\n").utf8))
    }

    static func quote(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) else {
            return value
        }
        return "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}

/// Every retry the process makes is a log line (`event=retrying`: what, class, attempt, delay,
/// error), whichever process and component makes it.
public enum RetryLogging {
    public static func install() {
        let log = Log(component: "retry")
        RetryEvents.observe { event in
            log.event("retrying", ["what": event.what, "class": FleetMetrics.retryClass(event.error),
                                   "attempt": String(event.attempt), "delay_ms": String(Int(event.delay.seconds * 1000)),
                                   "error": "\(event.error)"])
        }
    }
}
