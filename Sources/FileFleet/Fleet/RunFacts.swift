import Synchronization

/// What a run driver learnt before it stopped, for the summary of a run that did not finish.
final class RunFacts: Sendable {
    private let state = Mutex<(run: Int64?, planned: Int, resumed: Int)>((nil, 0, 0))
    private let token = Mutex<Int64?>(nil)

    func record(run: Int64, planned: Int, resumed: Int) { state.withLock { $0 = (run, planned, resumed) } }

    /// The token of the lease the run was driven under.
    func record(leaseToken: Int64) { token.withLock { $0 = leaseToken } }

    var run: Int64? { state.withLock { $0.run } }
    var leaseToken: Int64? { token.withLock { $0 } }

    func fill(_ summary: inout SyncSummary) {
        let (run, planned, resumed) = state.withLock { $0 }
        guard let run else { return }
        summary.run_id = run
        summary.planned = planned
        summary.resumed = resumed
    }
}
