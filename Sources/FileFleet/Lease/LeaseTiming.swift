import FleetPostgres

/// Timing of a lease (SPEC §6.5). All lease times are computed by the database clock.
public struct LeaseTiming: Sendable, Equatable {
    public var heartbeat: Duration
    public var ttl: Duration
    /// A contender needs the last heartbeat to be older than this, as well as the TTL to have passed.
    public var grace: Duration

    public init(heartbeat: Duration = .seconds(5), ttl: Duration = .seconds(30), grace: Duration? = nil) {
        self.heartbeat = heartbeat
        self.ttl = ttl
        self.grace = grace ?? heartbeat * 3
    }
}
