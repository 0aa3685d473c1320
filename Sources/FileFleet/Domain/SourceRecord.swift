/// A source as stored: the root its id is bound to, its mode, and (git) the bookmark commit.
public struct SourceRecord: Sendable {
    public var id: String
    public var root: String
    public var mode: SourceMode
    public var bookmark: String?
}
