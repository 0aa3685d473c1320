import FleetPostgres

/// A row of `leases` as an operator sees it; ages are measured by the database clock.
public struct LeaseInfo: Sendable, Equatable {
    public var name: String
    public var holder: String?
    public var token: Int64
    public var heartbeatAge: Double?
    public var expiresIn: Double?
}
