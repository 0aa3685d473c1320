import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

/// A file whose read did not finish within the read timeout: failed for this run, tried again
/// by the next (SPEC §6.8, §6.12).
enum ReadTimeout {
    static let reason = "read_timeout"
}
