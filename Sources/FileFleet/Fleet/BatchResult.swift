import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

struct BatchResult: Sendable {
    var counts = OutcomeCounts()
    var refused = 0
}
