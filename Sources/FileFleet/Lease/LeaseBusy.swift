import FleetPostgres

/// Someone else holds the lease and is alive (or not yet past TTL and grace).
public struct LeaseBusy: Error, CustomStringConvertible {
    public let lease: LeaseInfo
    public var description: String {
        let age = lease.heartbeatAge.map { String(format: "%.1fs", $0) } ?? "never"
        return "lease \(lease.name) is held by \(lease.holder ?? "?") (token \(lease.token), last heartbeat \(age) ago)"
    }
}
