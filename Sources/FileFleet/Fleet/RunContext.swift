import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

/// A run as a worker needs it: where its source is and how strict to be. Read from Postgres,
/// never from the message (SPEC §6.10).
struct RunContext: Sendable {
    var id: Int64
    var sourceID: String
    var root: String
    var state: RunState
    var maxFileBytes: Int
    var maxAttempts: Int
    /// The key the coordinator signs the run's path messages with; nil for a run made without one.
    var messageKey: [UInt8]? = nil
}
