import Dispatch

/// Runs blocking work (a subprocess, a file read, a synchronous C call) on a Dispatch thread,
/// never on the cooperative pool, and resumes the caller with its result.
public func runBlocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try work() })
        }
    }
}
