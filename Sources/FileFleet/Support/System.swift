import Foundation
import FleetPostgres

public enum System {
    public static var coreCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
    public static var hostName: String { ProcessInfo.processInfo.hostName }
}

extension RetryPolicy {
    /// How long every FileFleet process keeps trying while Postgres is transiently unavailable
    /// (SPEC §6.9): bounded by a 60 s budget rather than a small count of attempts, so a burst of
    /// 53300 while connection slots are scarce does not abort a run that would converge.
    static let fleet = RetryPolicy(maxAttempts: 100, baseDelay: .milliseconds(200), maxDelay: .seconds(5),
                                   totalBudget: .seconds(60))
}
