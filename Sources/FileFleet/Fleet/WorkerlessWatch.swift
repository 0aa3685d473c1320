/// Says at once when a run without in-process workers finds no live worker, and gives up (throws
/// `NoWorkers`) when none has appeared within the timeout.
struct WorkerlessWatch {
    let timeout: Duration
    let log: Log
    let run: Int64
    private var since: ContinuousClock.Instant?

    init(timeout: Duration, log: Log, run: Int64) { (self.timeout, self.log, self.run) = (timeout, log, run) }

    mutating func reset() { since = nil }

    mutating func check(live: Int) throws {
        guard live == 0 else {
            if since != nil { log.event("workers_found", ["run": String(run), "live_workers": String(live)]) }
            since = nil
            return
        }
        let now = ContinuousClock.now
        guard let since else {
            self.since = now
            log.event("no_workers", ["run": String(run), "waiting_seconds": String(Int(timeout.seconds)), "hint": NoWorkers.hint], level: .warning)
            return
        }
        if now - since >= timeout { throw NoWorkers(waited: now - since) }
    }
}
