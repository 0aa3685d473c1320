/// Why a file of a source could not be read. `reason` is what `filefleet.failures.reason` stores.
public enum ReadFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The path no longer names anything: treat the file as deleted.
    case vanished
    /// The file (or a directory on its way, or the source root) exists but cannot be read.
    case unreadable(String)
    /// Larger than the limit; carries the size seen.
    case tooLarge(Int)
    /// A symlink on the way points outside the source root.
    case escapesRoot
    /// The path itself is refused: empty, absolute, NUL, or an empty, `.` or `..` component.
    case invalidPath
    /// A directory, FIFO, socket or device.
    case notAFile

    public var reason: String {
        switch self {
        case .vanished: "vanished"
        case .unreadable: "unreadable"
        case .tooLarge: "too_large"
        case .escapesRoot: "escapes_root"
        case .invalidPath: "invalid_path"
        case .notAFile: "not_a_file"
        }
    }

    public var description: String {
        switch self {
        case .vanished: "vanished"
        case .unreadable(let message): "unreadable: \(message)"
        case .tooLarge(let size): "too_large: \(size) bytes"
        case .escapesRoot: "escapes_root: a symlink points outside the source root"
        case .invalidPath: "invalid_path: not a normalised relative path"
        case .notAFile: "not_a_file: not a regular file"
        }
    }
}
