import FleetPostgres
import Foundation
public import Logging

/// The fleet's events, through swift-log: a `Logger` per component whose metadata (`run`,
/// `source`, `worker`) is set once with `with(_:)` and carried. The message is the event's name
/// (SPEC §7); its fields are metadata. What the lines look like is the process's choice
/// (`LogLines.bootstrap`: `key=value` by default, or JSON lines).
public struct Log: Sendable {
    public private(set) var logger: Logger
    public let component: String
    public let enabled: Bool

    public init(component: String, enabled: Bool = true) {
        self.component = component
        self.enabled = enabled
        logger = enabled ? Logger(label: component) : Logger(label: component, factory: { _ in SwiftLogNoOpLogHandler() })
    }

    /// Another component, with this one's metadata.
    public func child(_ component: String) -> Log {
        var child = Log(component: component, enabled: enabled)
        child.logger.logLevel = logger.logLevel
        for (key, value) in logger.handler.metadata { child.logger[metadataKey: key] = value }
        return child
    }

    /// This log with `metadata` on every line from now on.
    public func with(_ metadata: [String: String]) -> Log {
        var log = self
        for (key, value) in metadata { log.logger[metadataKey: key] = .string(value) }
        return log
    }

    public func event(_ name: String, _ fields: [String: String] = [:], level: Logger.Level = .info) {
        logger.log(level: level, "\(name)", metadata: fields.mapValues { .string($0) })
    }
}
