import Foundation

/// A file found by a walk: its path relative to the root, `/`-separated, exactly as on disk.
public struct ListedFile: Sendable, Equatable {
    public var path: String
    public var size: Int64
    /// Modification time in microseconds since the epoch (what timestamptz holds).
    public var mtimeMicros: Int64
}
