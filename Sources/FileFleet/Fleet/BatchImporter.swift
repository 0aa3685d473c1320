import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

/// One batch of messages: decode, refuse what is forged, read and parse the files outside any
/// transaction (`prepare`), then one transaction per run in the batch (`write`).
final class BatchImporter: Sendable {
    let settings: FleetSettings
    let options: WorkerOptions
    let writer: BatchWriter
    let pool: PostgresPool
    let log: Log
    let metrics: FleetMetrics
    private let runs = Mutex<[Int64: RunContext?]>([:])

    /// With `fence`, every write transaction first runs it (see `BatchWriter.fence`).
    init(settings: FleetSettings, options: WorkerOptions, worker: String, pool: PostgresPool, log: Log,
         metrics: FleetMetrics, fence: (@Sendable (PostgresConnection) async throws -> Void)? = nil) {
        self.metrics = metrics
        self.settings = settings
        self.options = options
        self.writer = BatchWriter(schema: settings.schema, worker: worker, timeout: options.batchTimeout, fence: fence)
        self.pool = pool
        self.log = log
    }

    /// Decodes `messages`, refuses what is forged, and reads and parses the files of each run,
    /// outside any transaction. Nothing is written: a batch can be prepared while another is written.
    func prepare(_ messages: [KafkaMessage]) async throws -> PreparedBatch {
        var batch = PreparedBatch()
        var byRun: [Int64: [PathMessage]] = [:]
        for message in messages {
            guard let decoded = PathMessage.decode(message.value) else {
                batch.refused += 1
                log.event("refused", ["reason": "undecodable", "partition": String(message.partition),
                                      "offset": String(message.offset), "bytes": String(message.value?.count ?? 0)])
                continue
            }
            byRun[decoded.run, default: []].append(decoded)
        }
        for (runID, paths) in byRun.sorted(by: { $0.key < $1.key }) {
            guard let run = try await context(runID) else {
                batch.refused += paths.count
                log.event("refused", ["reason": "unknown_run", "run": String(runID)])
                continue
            }
            guard run.state == .running else { continue }  // a finished run: nothing left to do
            var unique = Set<ExactPath>()
            var accepted: [String] = []
            var unsigned: [String] = []  // accepted, without the run's signature
            for message in paths {
                guard message.source == run.sourceID, RelativePath.isValid(message.path) else {
                    batch.refused += 1
                    log.event("refused", ["reason": message.source == run.sourceID ? "invalid_path" : "wrong_source",
                                          "run": String(runID), "path": message.path])
                    continue
                }
                if unique.insert(ExactPath(message.path)).inserted {
                    accepted.append(message.path)
                    if !(run.messageKey.map { message.isSigned(with: $0) } ?? false) { unsigned.append(message.path) }
                }
            }
            guard !accepted.isEmpty else { continue }
            // Only what the coordinator planned: a forged path of the right run and source must not
            // make the worker read a file the plan left out (hidden, excluded) or checkpoint a path
            // the run never had, which would end the run early (SPEC §6.10). A message signed with
            // the run's key was planned: only the coordinator (and the database) know the key. The
            // others are looked up in the plan.
            if !unsigned.isEmpty {
                let planned = try await plannedPaths(unsigned, run: runID)
                if planned.count < unsigned.count {
                    var notPlanned = Set<ExactPath>()
                    for path in unsigned where !planned.contains(ExactPath(path)) {
                        notPlanned.insert(ExactPath(path))
                        batch.refused += 1
                        log.event("refused", ["reason": "not_planned", "run": String(runID), "path": path])
                    }
                    accepted = accepted.filter { !notPlanned.contains(ExactPath($0)) }
                    guard !accepted.isEmpty else { continue }
                }
            }
            batch.runs.append((run, await readFiles(accepted, run: run)))
        }
        return batch
    }

    /// Reads paths of `run`'s plan that a coordinator hands over itself (no message: nothing to
    /// refuse), for `write`. Nothing is read for a run that is no longer running.
    func prepareDirectly(_ paths: [String], run runID: Int64) async throws -> PreparedBatch {
        guard let run = try await context(runID), run.state == .running else { return PreparedBatch() }
        return PreparedBatch(runs: [(run, await readFiles(paths, run: run))])
    }

    /// Writes a prepared batch: one transaction per run in it.
    func write(_ batch: PreparedBatch) async throws -> BatchResult {
        var result = BatchResult(refused: batch.refused)
        for (run, outcomes) in batch.runs {
            for (_, outcome) in outcomes { if case .document(_, let size, _) = outcome { metrics.recordFileSize(size) } }
            let counts = try await writeIsolatingRejections(run: run.id, sourceID: run.sourceID, outcomes: outcomes)
            result.counts.imported += counts.imported
            result.counts.unchanged += counts.unchanged
            result.counts.deleted += counts.deleted
            result.counts.failed += counts.failed
        }
        return result
    }

    /// Writes `outcomes` in one transaction (transient errors retried, SPEC §6.9). When the
    /// database rejects the data itself (`Rejection`), the batch is split in halves until each
    /// rejected file is alone; that file is quarantined `rejected` with the SQLSTATE and message,
    /// and the rest commits (SPEC §6.11). A batch of n files with one poison file costs about
    /// 2·log2(n) extra transactions.
    private func writeIsolatingRejections(run: Int64, sourceID: String,
                                          outcomes: [(path: String, outcome: FileOutcome)]) async throws -> OutcomeCounts {
        do {
            return try await withRetry(.default, what: "a batch of \(outcomes.count) paths of run \(run)") {
                try await pool.withConnection { c in
                    try await writer.write(run: run, sourceID: sourceID, outcomes: outcomes, on: c)
                }
            }
        } catch let error as PostgresError where Rejection.isRejection(error) {
            guard outcomes.count > 1 else {
                let path = outcomes[0].path
                log.event("rejected", ["run": String(run), "path": path, "sqlstate": error.code.rawValue, "error": error.message])
                let failed = FileOutcome.failed(reason: Rejection.reason,
                                                message: "rejected: SQLSTATE \(error.code.rawValue): \(error.message)", attempts: 1)
                return try await withRetry(.default, what: "the quarantine of a rejected file of run \(run)") {
                    try await pool.withConnection { c in
                        try await writer.write(run: run, sourceID: sourceID, outcomes: [(path, failed)], on: c)
                    }
                }
            }
            let half = outcomes.count / 2
            let first = try await writeIsolatingRejections(run: run, sourceID: sourceID, outcomes: Array(outcomes[..<half]))
            let second = try await writeIsolatingRejections(run: run, sourceID: sourceID, outcomes: Array(outcomes[half...]))
            return OutcomeCounts(imported: first.imported + second.imported, unchanged: first.unchanged + second.unchanged,
                                 deleted: first.deleted + second.deleted, failed: first.failed + second.failed)
        }
    }

    private func context(_ runID: Int64) async throws -> RunContext? {
        if let cached = runs.withLock({ $0[runID] }), let context = cached, context.state == .running { return context }
        let store = RunStore(schema: settings.schema)
        let context = try await pool.withConnection { c in try await store.context(run: runID, on: c) }
        runs.withLock { $0[runID] = context }
        return context
    }

    /// Those of `paths` in `run`'s plan. A plan never changes once its run exists.
    private func plannedPaths(_ paths: [String], run: Int64) async throws -> Set<ExactPath> {
        let store = RunStore(schema: settings.schema)
        return try await withRetry(.default, what: "the plan check of \(paths.count) paths of run \(run)") {
            try await pool.withConnection { c in try await store.planned(paths, run: run, on: c) }
        }
    }

    /// Reads, hashes and parses on Dispatch threads, `options.concurrency` at a time, in chunks of
    /// consecutive paths (one thread hop and one `FileReader` per chunk, not per file: neighbours
    /// share their directories' descriptors). A read still running `options.readTimeout` after it
    /// began (a hung network mount, a FUSE server that stopped answering) is abandoned by the batch's
    /// watchdog: its file fails `read_timeout`, the rest of its chunk is read on another thread so the
    /// batch commits, and its thread is left to finish or hang; `metrics.stuck` reports it once it
    /// outlives `options.stuckBound`. One watchdog per batch, not a timer per file: a backfill starts
    /// thousands of reads a second.
    private func readFiles(_ paths: [String], run: RunContext) async -> [(path: String, outcome: FileOutcome)] {
        let lanes = max(1, min(options.concurrency, paths.count))
        let chunkSize = max(1, min(Self.chunkSize, (paths.count + lanes - 1) / lanes))
        let reads = ReadsInFlight()
        let watchdog = Task { [options, metrics, log] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                for (key, path, done, waiting) in reads.abandon(olderThan: options.readTimeout) {
                    metrics.began(key, "a read of \(path)", bound: options.stuckBound - options.readTimeout)
                    log.event("read_timeout", ["run": String(run.id), "path": path, "seconds": String(Int(options.readTimeout.seconds))])
                    waiting.resume(returning: done + [.failed(reason: ReadTimeout.reason,
                                                              message: "the read did not finish within \(Int(options.readTimeout.seconds)) s (--batch-timeout / 2)",
                                                              attempts: 1)])
                }
            }
        }
        defer { watchdog.cancel() }
        return await withTaskGroup(of: (Range<Int>, [FileOutcome]).self) { group in
            var outcomes = [FileOutcome?](repeating: nil, count: paths.count)
            var next = 0
            func start(_ range: Range<Int>) {
                group.addTask { (range, await self.read(paths[range], run: run, reads: reads)) }
            }
            func startNext() {
                let end = min(next + chunkSize, paths.count)
                start(next..<end)
                next = end
            }
            for _ in 0..<lanes where next < paths.count { startNext() }
            for await (range, read) in group {
                for (offset, outcome) in read.enumerated() { outcomes[range.lowerBound + offset] = outcome }
                if read.count < range.count {
                    start(range.lowerBound + read.count..<range.upperBound)  // after a read that hung
                } else if next < paths.count {
                    startNext()
                }
            }
            return zip(paths, outcomes).map { ($0, $1!) }
        }
    }

    /// Paths read per thread hop.
    static let chunkSize = 64

    /// Consecutive files read on one Dispatch thread with one reader, each registered in `reads`
    /// from the moment it begins; stops early when the watchdog abandoned the chunk.
    private func read(_ paths: ArraySlice<String>, run: RunContext, reads: ReadsInFlight) async -> [FileOutcome] {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { [metrics] in
                let key = reads.begin(continuation)
                let reader = FileReader(root: run.root)
                for path in paths {
                    guard reads.starting(key, path) else { return }
                    let outcome = Self.readFile(path, run: run, reader: reader)
                    guard reads.finished(key, outcome) else {
                        metrics.ended("read \(key)")  // abandoned meanwhile: it is no longer stuck
                        return
                    }
                }
                if let (waiting, outcomes) = reads.end(key) { waiting.resume(returning: outcomes) }
            }
        }
    }

    /// One file: vanished → deleted; a read that fails for a reason that may pass (unreadable) is
    /// tried `maxAttempts` times; the others (too large, escapes the root) fail at once.
    static func readFile(_ path: String, run: RunContext, reader: FileReader? = nil) -> FileOutcome {
        let reader = reader ?? FileReader(root: run.root)
        var attempt = 1
        while true {
            do {
                let file = try reader.read(path, maxBytes: run.maxFileBytes)
                let document = Importer.importFile(bytes: file.bytes, path: path, mtime: file.mtime)
                return .document(sha256: document.sha256, size: document.size,
                                 row: BatchWriter.row(document, mtime: file.mtimeMicros, sourceID: run.sourceID, run: run.id))
            } catch .vanished {
                return .vanished
            } catch .notAFile {
                // A directory, FIFO, socket or device (or a link to one) is not a file of the
                // source, as in a directory walk (docs/hostile-input.md): a file replaced by one
                // is gone, and its row with it. Git mode lists tracked links too.
                return .vanished
            } catch .unreadable where isSymbolicLinkLoop(path, root: run.root) {
                // A link loop is not a file either; a link swapped in mid-read still fails.
                return .vanished
            } catch {
                if case .unreadable = error, attempt < run.maxAttempts {
                    attempt += 1
                    usleep(UInt32(50_000 * attempt))
                    continue
                }
                return .failed(reason: error.reason, message: error.description, attempts: attempt)
            }
        }
    }

    /// A symlink the kernel cannot resolve for too many links on the way.
    private static func isSymbolicLinkLoop(_ path: String, root: String) -> Bool {
        var info = stat()
        guard lstat(root + "/" + path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK else { return false }
        return stat(root + "/" + path, &info) != 0 && errno == ELOOP
    }
}
