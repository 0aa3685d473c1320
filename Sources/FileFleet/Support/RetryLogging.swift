import FleetPostgres
import Foundation
import Logging

/// Every retry the process makes is a log line (`event=retrying`: what, class, attempt, delay,
/// error), whichever process and component makes it.
public enum RetryLogging {
    public static func install() {
        RetryEvents.observe { event in
            // Made per line: a logger made before `LogLines.bootstrap` would keep swift-log's default handler.
            Log(component: "retry").event("retrying", ["what": event.what, "class": FleetMetrics.retryClass(event.error),
                                   "attempt": String(event.attempt), "delay_ms": String(Int(event.delay.seconds * 1000)),
                                   "error": "\(event.error)"], level: .warning)
        }
    }
}
