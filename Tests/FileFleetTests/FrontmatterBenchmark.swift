import Foundation
import Testing
@testable import FileFleet

/// Not a test: µs per file of `Frontmatter.parse` over the frontmatter blocks of a bench corpus.
/// Runs only when FILEFLEET_BENCH_FRONTMATTER names a corpus directory (scripts/bench-frontmatter).
@Suite struct FrontmatterBenchmark {
    static let environment = ProcessInfo.processInfo.environment
    static let corpus = environment["FILEFLEET_BENCH_FRONTMATTER"]

    @Test(.enabled(if: corpus != nil)) func parsePerFile() throws {
        let blocks = try Self.blocks(under: Self.corpus ?? "")
        let rounds = Int(Self.environment["FILEFLEET_BENCH_ROUNDS"] ?? "") ?? 5
        let paths = Self.environment["FILEFLEET_BENCH_PATH"].map { [$0 == "fast"] } ?? [false, true]
        print("frontmatter bench: \(blocks.count) files, \(rounds) rounds")
        for fastPath in paths {
            var best = Double.infinity
            for _ in 0..<rounds {
                let start = ContinuousClock.now
                let members = Self.parseAll(blocks, fastPath: fastPath)
                let elapsed = ContinuousClock.now - start
                #expect(members == 4 * blocks.count - (blocks.count + 4) / 5)
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                best = min(best, seconds)
            }
            let micros = String(format: "%.2f", best * 1e6 / Double(blocks.count))
            print("frontmatter bench: \(fastPath ? "fast path" : "Yams only"): \(micros) µs/file (best of \(rounds))")
        }
    }

    /// The callgrind entry point (`--toggle-collect='*parseAll*'`): parses every block once.
    @inline(never)
    static func parseAll(_ blocks: [[UInt8]], fastPath: Bool) -> Int {
        var members = 0
        for block in blocks {
            block.withUnsafeBufferPointer { yaml in
                if case .success(let m) = Frontmatter.parse(yaml, fastPath: fastPath) { members += m.count }
            }
        }
        return members
    }

    /// The YAML between the delimiters of every note under `root`, in path order.
    static func blocks(under root: String) throws -> [[UInt8]] {
        var paths: [String] = []
        let walker = FileManager.default.enumerator(atPath: root)
        while let path = walker?.nextObject() as? String {
            if path.hasSuffix(".md") { paths.append(path) }
        }
        let limit = Int(environment["FILEFLEET_BENCH_FILES"] ?? "") ?? Int.max
        return try paths.sorted().prefix(limit).map { path in
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: root + "/" + path)))
            return bytes.withUnsafeBufferPointer { text in
                guard case let .block(yaml, _) = Frontmatter.split(text) else { return [] }
                return Array(text[yaml])
            }
        }
    }
}
