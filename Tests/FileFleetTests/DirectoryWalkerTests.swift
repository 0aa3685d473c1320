@testable import FileFleet
import Foundation
import Testing

/// The walk lists directories on several threads: it must list exactly what one thread lists,
/// each file once, on a generated tree and on a real one.
@Suite struct DirectoryWalkerTests {
    @Test func aParallelWalkListsWhatASequentialOneLists() throws {
        let tree = try ScratchTree("walker")
        var expected: Set<String> = []
        for d in 0..<40 {
            for f in 0..<(d % 7) * 9 {
                let path = "d\(d)/" + String(repeating: "s/", count: d % 5) + "f\(f).md"
                try tree.write(path, "\(d) \(f)")
                expected.insert(path)
            }
        }
        try tree.write(".hidden/x.md", "hidden")
        try tree.write("deep/" + (0..<30).map { "l\($0)" }.joined(separator: "/") + "/leaf.md", "deep")
        expected.insert("deep/" + (0..<30).map { "l\($0)" }.joined(separator: "/") + "/leaf.md")
        try tree.link("d1/link.md", to: "f0.md")  // d1 is empty: a dangling link, not a file
        try tree.link("d5/link.md", to: "f0.md")  // d5/f0.md is a file
        expected.insert("d5/link.md")
        try FileManager.default.createDirectory(atPath: tree.root + "/empty/a/b", withIntermediateDirectories: true)

        let one = try Self.walk(tree.root, threads: 1)
        #expect(Set(one.map(\.path)).symmetricDifference(expected).isEmpty)
        for threads in [2, 4, 8] {
            let many = try Self.walk(tree.root, threads: threads)
            #expect(many.count == one.count, "threads \(threads): a file listed twice or not at all")
            #expect(many.sorted { $0.path < $1.path } == one.sorted { $0.path < $1.path })
        }
    }

    @Test func aParallelWalkOfARealTreeListsWhatASequentialOneLists() throws {
        let root = "/usr/share/doc"
        try #require(FileManager.default.fileExists(atPath: root))
        let one = try Self.walk(root, threads: 1)
        let many = try Self.walk(root, threads: 4)
        print("walker: \(one.count) files under \(root)")
        #expect(one.count > 100)
        #expect(many.count == one.count)
        #expect(many.sorted { $0.path < $1.path } == one.sorted { $0.path < $1.path })
    }

    @Test func aCallbackThatThrowsEndsTheWalk() throws {
        let tree = try ScratchTree("walker-throws")
        for i in 0..<200 { try tree.write("d\(i % 20)/f\(i).md", "x") }
        struct Enough: Error {}
        var seen = 0
        #expect(throws: Enough.self) {
            try DirectoryWalker(root: tree.root, filter: PathFilter()).walk(threads: 4, file: { _ in
                seen += 1
                if seen == 5 { throw Enough() }
            })
        }
        #expect(seen == 5)
    }

    @Test func anUnreadableRootIsAClearError() {
        #expect(throws: UsageError.self) {
            try DirectoryWalker(root: "/nonexistent/filefleet-walker", filter: PathFilter()).walk(file: { _ in })
        }
    }

    static func walk(_ root: String, threads: Int) throws -> [ListedFile] {
        var files: [ListedFile] = []
        try DirectoryWalker(root: root, filter: PathFilter()).walk(threads: threads, file: { files.append($0) })
        return files
    }
}
