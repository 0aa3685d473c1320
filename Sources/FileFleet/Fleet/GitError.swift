import Foundation
import Synchronization

/// A git command that failed: what ran, its exit status (-1: did not finish) and the tail of its stderr.
public struct GitError: Error, CustomStringConvertible {
    public let command: String
    public let status: Int32
    public let stderr: String
    public var description: String {
        let tail = stderr.trimmingCharacters(in: .whitespacesAndNewlines).suffix(1000)
        return "git failed: \(command) exited with status \(status)" + (tail.isEmpty ? "" : ": \(tail)")
    }
}
