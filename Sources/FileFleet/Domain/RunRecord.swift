/// A run as stored: its plan is in `planned_paths`, its progress in `checkpoints`.
public struct RunRecord: Sendable {
    public var id: Int64
    public var sourceID: String
    public var mode: SourceMode
    /// Git mode: the commit the run imports, the source's bookmark once it completes.
    public var pin: String?
    public var state: RunState
    public var planned: Int
    /// The key its path messages are signed with (`PathMessage.signed(with:)`); nil for a run made
    /// before runs had one.
    public var messageKey: [UInt8]? = nil
}
