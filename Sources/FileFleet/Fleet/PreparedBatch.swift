import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

/// A batch whose files are read and parsed, per run, and whose forged messages are counted.
struct PreparedBatch: Sendable {
    var runs: [(run: RunContext, outcomes: [(path: String, outcome: FileOutcome)])] = []
    var refused = 0
}
