import FleetPostgres

/// The lease was taken over (or force-released): this holder must not write another byte.
public struct LeaseLost: Error, CustomStringConvertible {
    public let name: String
    public let token: Int64
    public var description: String { "lease \(name) with token \(token) was lost to another holder" }
}
