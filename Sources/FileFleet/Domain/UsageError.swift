/// A usage error the user must fix: exit 2 with this one line.
public struct UsageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
