import Foundation

/// A failure to start or find a local server, in words a user can act on.
public struct StackError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
