import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

/// Progress of a run, as the coordinator sees it in the checkpoints.
public struct SyncProgress: Sendable {
    public var planned: Int
    public var done: Int
    /// Done when this invocation started (banked by an earlier attempt).
    public var resumed: Int
}
