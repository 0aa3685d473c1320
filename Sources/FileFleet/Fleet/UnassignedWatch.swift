import ServiceLifecycle
import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

/// When a consumer without partitions is due a rejoin check: after `after` without any, then
/// each check in a row twice as late (up to 5 minutes), so that a surplus worker costs the group
/// no rebalances.
struct UnassignedWatch {
    let after: Duration
    private var since: ContinuousClock.Instant?
    private var wait: Duration

    init(after: Duration) { (self.after, self.wait) = (after, after) }


    mutating func due(assigned: Bool) -> Bool {
        guard !assigned else { (since, wait) = (nil, after); return false }
        let now = ContinuousClock.now
        guard let since else { self.since = now; return false }
        guard now - since >= wait else { return false }
        self.since = now  // the next consumer starts without partitions too
        wait = min(wait * 2, .seconds(300))
        return true
    }
}
