public import Foundation

/// A file's bytes as read, with the size and modification time seen on the open descriptor.
public struct SourceFile: Sendable {
    public var bytes: [UInt8]
    public var size: Int
    public var mtime: Date
    /// `mtime` in whole microseconds, exactly (what is stored and compared).
    public var mtimeMicros: Int64
}
