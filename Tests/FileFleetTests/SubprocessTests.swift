@testable import FileFleet
import Foundation
import Synchronization
import Testing

/// A server we spawn must be stoppable: it may not inherit the spawning thread's blocked signals
/// (Swift's threads block most of them) or our ignored ones. The embedded broker once ignored every
/// `stack down` for 2 s, until it was SIGKILLed.
@Suite struct SubprocessTests {
    @Test func aSpawnedProcessStartsWithNoSignalBlockedOrIgnored() throws {
        let output = NSTemporaryDirectory() + "filefleet-spawn-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: output) }
        // From a thread that blocks SIGTERM and SIGINT, with SIGTERM ignored by the process, as a
        // signal trap would have it.
        let spawned = SpawnResult()
        let done = DispatchSemaphore(value: 0)
        let previous = signal(SIGTERM, SIG_IGN)
        defer { signal(SIGTERM, previous) }
        Thread {
            var blocked = sigset_t()
            sigemptyset(&blocked)
            sigaddset(&blocked, SIGTERM)
            sigaddset(&blocked, SIGINT)
            pthread_sigmask(SIG_BLOCK, &blocked, nil)
            spawned.set(Result { try Command.spawn(["/bin/cat", "/proc/self/status"], output: output) })
            done.signal()
        }.start()
        done.wait()
        let pid = try spawned.get()
        #expect(Command.wait(pid) == 0)
        let status = try String(contentsOfFile: output, encoding: .utf8)
        func mask(_ field: String) throws -> UInt64 {
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix(field + ":") })
            return try #require(UInt64(line.split(separator: "\t").last!.trimmingCharacters(in: .whitespaces), radix: 16))
        }
        let bit = { (signal: Int32) -> UInt64 in 1 << UInt64(signal - 1) }
        #expect(try mask("SigBlk") == 0, "\(status)")
        #expect(try mask("SigIgn") & (bit(SIGTERM) | bit(SIGINT)) == 0, "\(status)")
    }

    /// The spawn's outcome, handed from the spawning thread to the test.
    final class SpawnResult: Sendable {
        private let value = Mutex<Result<Int32, any Error>?>(nil)
        func set(_ result: Result<Int32, any Error>) { value.withLock { $0 = result } }
        func get() throws -> Int32 { try value.withLock { $0 }!.get() }
    }
}
