import ServiceLifecycle
import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

/// The batch in flight could not finish within the drain timeout; it was rolled back.
public struct DrainTimeout: Error, CustomStringConvertible {
    public var description: String { "the batch in flight did not finish within the drain timeout; rolled back" }
}
