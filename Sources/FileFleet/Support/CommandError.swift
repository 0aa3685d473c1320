public import Foundation

/// A command that failed: what ran, its exit status and the tail of its output.
public struct CommandError: Error, CustomStringConvertible {
    public let command: String
    public let status: Int32
    public let output: String
    /// Why the program could not be started at all (ENOENT: not installed), if that is what failed.
    public var launchError: POSIXErrorCode? = nil
    public var description: String {
        "\(command) exited with status \(status): \(output.suffix(2000))"
    }
}
