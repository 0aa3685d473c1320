import Foundation
import Glibc
import PropertyBased
import Testing
@testable import FileFleet

private let secret = "SECRET-OUTSIDE-THE-ROOT"

/// A fresh tree: `<base>/root` is the source root, `<base>/outside` holds a secret it must never read.
private func makeTree() throws -> ScratchTree {
    let tree = try ScratchTree("reader")
    try tree.write("../outside/secret.txt", secret)
    return tree
}

private extension ScratchTree {
    var outside: String { base + "/outside" }

    /// `relative` read by a fresh reader, and again by one that read it (and its directory) before:
    /// a reader's second answer, from the directories it keeps open, must be its first.
    func read(_ relative: String, maxBytes: Int = 1 << 20) -> Result<SourceFile, ReadFailure> {
        let reader = FileReader(root: root)
        let first = Self.result { () throws(ReadFailure) in try reader.read(relative, maxBytes: maxBytes) }
        let again = Self.result { () throws(ReadFailure) in try reader.read(relative, maxBytes: maxBytes) }
        switch (first, again) {
        case (.success(let a), .success(let b)):
            #expect(a.bytes == b.bytes && a.mtimeMicros == b.mtimeMicros, "\(relative): read again differently")
        case (.failure(let a), .failure(let b)):
            #expect(a == b, "\(relative): \(a), then \(b)")
        default:
            Issue.record("\(relative): \(first), then \(again)")
        }
        return first
    }

    static func result(_ body: () throws(ReadFailure) -> SourceFile) -> Result<SourceFile, ReadFailure> {
        do throws(ReadFailure) {
            return .success(try body())
        } catch {
            return .failure(error)
        }
    }

    func text(_ relative: String) -> String? {
        guard case .success(let file) = read(relative) else { return nil }
        return String(decoding: file.bytes, as: UTF8.self)
    }

    func failure(_ relative: String, maxBytes: Int = 1 << 20) -> ReadFailure? {
        guard case .failure(let failure) = read(relative, maxBytes: maxBytes) else { return nil }
        return failure
    }
}

@Suite struct FileReaderTests {
    @Test func readsBytesSizeAndMtime() throws {
        let tree = try makeTree()
        try tree.write("dir/a.md", "# hello\n")
        let mtime = Date(timeIntervalSince1970: 1_600_000_000.25)
        try FileManager.default.setAttributes([.modificationDate: mtime], ofItemAtPath: tree.root + "/dir/a.md")
        let file = try FileReader.read(root: tree.root, relativePath: "dir/a.md", maxBytes: 100)
        #expect(file.bytes == Array("# hello\n".utf8))
        #expect(file.size == 8)
        #expect(abs(file.mtime.timeIntervalSince1970 - 1_600_000_000.25) < 0.001)
        // The root may be given with a trailing slash.
        #expect(try FileReader.read(root: tree.root + "/", relativePath: "dir/a.md", maxBytes: 100).size == 8)
    }

    @Test func refusesPathsThatAreNotNormalisedRelativePaths() throws {
        let tree = try makeTree()
        try tree.write("a/b", "x")
        for path in ["", "/etc/passwd", tree.root + "/a/b", "..", "../outside/secret.txt", "a/../a/b", "a//b",
                     "./a/b", "a/./b", "a/b/", "a\u{0}b"] {
            #expect(!RelativePath.isValid(path), "\(path)")
            #expect(tree.failure(path) == .invalidPath, "\(path)")
        }
        for path in ["a", "a b/c d.md", "quote\"s'.md", "new\nline.md", "tab\tname", "ü.md", "...", "..x", ".hidden",
                     "very/deep/" + String(repeating: "d/", count: 200) + "f"] {
            #expect(RelativePath.isValid(path), "\(path)")
        }
    }

    @Test func oddNamesAreReadExactlyAsSpelled() throws {
        let tree = try makeTree()
        let nfc = "caf\u{E9}.md"
        let nfd = "cafe\u{301}.md"
        let names = ["with space.md", "quote\"s'.txt", "new\nline.md", nfc, nfd, "日本語/ファイル.md"]
        for (i, name) in names.enumerated() { try tree.write(name, "content \(i)") }
        for (i, name) in names.enumerated() { #expect(tree.text(name) == "content \(i)", "\(name)") }
        #expect(nfc.utf8.count != nfd.utf8.count)
    }

    @Test func deepPaths() throws {
        let tree = try makeTree()
        let deep = String(repeating: "directory-with-a-long-name/", count: 200) + "leaf.txt"
        #expect(deep.utf8.count > Int(PATH_MAX))
        // Created one level at a time through descriptors: the whole path is longer than PATH_MAX.
        var fd = open(tree.root, O_RDONLY | O_DIRECTORY)
        for _ in 0..<200 {
            mkdirat(fd, "directory-with-a-long-name", 0o755)
            let next = openat(fd, "directory-with-a-long-name", O_RDONLY | O_DIRECTORY)
            close(fd)
            fd = next
        }
        let file = openat(fd, "leaf.txt", O_WRONLY | O_CREAT, 0o644)
        _ = write(file, "deep", 4)
        close(file)
        close(fd)
        #expect(tree.text(deep) == "deep")
    }

    @Test func symlinksOutsideTheRootEscape() throws {
        let tree = try makeTree()
        try tree.link("rel.txt", to: "../outside/secret.txt")
        try tree.link("abs.txt", to: tree.outside + "/secret.txt")
        try tree.link("etc", to: "/etc")
        try tree.link("up", to: "..")
        try tree.write("sub/keep.txt", "x")
        try tree.link("sub/sneaky", to: "../../outside")
        try tree.link("sub/self", to: ".")
        #expect(tree.failure("rel.txt") == .escapesRoot)
        #expect(tree.failure("abs.txt") == .escapesRoot)
        #expect(tree.failure("etc/passwd") == .escapesRoot)
        #expect(tree.failure("up/outside/secret.txt") == .escapesRoot)
        #expect(tree.failure("sub/sneaky/secret.txt") == .escapesRoot)
        #expect(tree.failure("sub/self/self/sneaky/secret.txt") == .escapesRoot)
    }

    /// Swift's `String` sees `/` followed by a combining mark as one Character that is not `/`:
    /// a reader that split by Characters would hand `../\u{301}secret` to the kernel as one name.
    @Test func aCombiningMarkAfterASlashStillSeparates() throws {
        let tree = try makeTree()
        let mark = "\u{301}"
        try tree.write("../outside/\(mark)secret.txt", secret)
        try tree.write("../\(mark)secret.txt", secret)
        try tree.link("rel.txt", to: "../\(mark)secret.txt")
        try tree.link("deeper.txt", to: "../outside/../\(mark)secret.txt")
        try tree.link("abs.txt", to: tree.outside + "/\(mark)secret.txt")
        try tree.link("etc", to: tree.outside)
        #expect(tree.failure("rel.txt") == .escapesRoot)
        #expect(tree.failure("deeper.txt") == .escapesRoot)
        #expect(tree.failure("abs.txt") == .escapesRoot)
        #expect(tree.failure("etc/\(mark)secret.txt") == .escapesRoot)
        // Inside the root, such names are ordinary files.
        try tree.write("d/\(mark)note.md", "inside")
        try tree.link("to-note.md", to: "d/\(mark)note.md")
        try tree.link("abs-note.md", to: tree.root + "/d/\(mark)note.md")
        #expect(tree.text("d/\(mark)note.md") == "inside")
        #expect(tree.text("to-note.md") == "inside")
        #expect(tree.text("abs-note.md") == "inside")
    }

    @Test func symlinksInsideTheRootAreFollowed() throws {
        let tree = try makeTree()
        try tree.write("real/target.md", "target")
        try tree.link("file-link.md", to: "real/target.md")
        try tree.link("dir-link", to: "real")
        try tree.write("other/x.txt", "x")
        try tree.link("other/back.md", to: "../real/target.md")
        try tree.link("other/chain.md", to: "back.md")
        try tree.link("absolute-inside.md", to: tree.root + "/real/target.md")
        #expect(tree.text("file-link.md") == "target")
        #expect(tree.text("dir-link/target.md") == "target")
        #expect(tree.text("other/back.md") == "target")
        #expect(tree.text("other/chain.md") == "target")
        #expect(tree.text("absolute-inside.md") == "target")
        // A link to a directory is not a file; a link to the root itself neither.
        #expect(tree.failure("dir-link") == .notAFile)
        try tree.link("root-link", to: ".")
        #expect(tree.failure("root-link") == .notAFile)
    }

    /// A reader keeps the directories it walked to open: a directory swapped for a link to the
    /// outside after a read is never followed, by that reader or another. A name the old directory
    /// does not have is walked again from the root, and refused.
    @Test func aDirectorySwappedForALinkAfterAReadIsNotFollowed() throws {
        let tree = try makeTree()
        try tree.write("d/keep.md", "kept")
        let reader = FileReader(root: tree.root)
        #expect(String(decoding: try reader.read("d/keep.md", maxBytes: 100).bytes, as: UTF8.self) == "kept")
        #expect(rename(tree.root + "/d", tree.root + "/d.old") == 0)
        try tree.link("d", to: "../outside")
        #expect(throws: ReadFailure.escapesRoot) { try reader.read("d/secret.txt", maxBytes: 100) }
        #expect(tree.failure("d/secret.txt") == .escapesRoot)
        // What the old directory holds is still inside the root, where the reader found it.
        #expect(String(decoding: try reader.read("d/keep.md", maxBytes: 100).bytes, as: UTF8.self) == "kept")
        #expect(tree.failure("d/keep.md") == .escapesRoot)
    }

    @Test func danglingAndLoopingLinks() throws {
        let tree = try makeTree()
        try tree.link("dangling.md", to: "nowhere.md")
        try tree.link("loop-a", to: "loop-b")
        try tree.link("loop-b", to: "loop-a")
        #expect(tree.failure("dangling.md") == .vanished)
        #expect(tree.failure("loop-a") == .unreadable("too many levels of symbolic links"))
    }

    @Test func vanishedFiles() throws {
        let tree = try makeTree()
        try tree.write("file.txt", "x")
        #expect(tree.failure("missing.txt") == .vanished)
        #expect(tree.failure("missing-dir/file.txt") == .vanished)
        #expect(tree.failure("file.txt/below") == .vanished)
        try FileManager.default.removeItem(atPath: tree.root + "/file.txt")
        #expect(tree.failure("file.txt") == .vanished)
    }

    @Test func notRegularFiles() throws {
        let tree = try makeTree()
        try tree.write("dir/x", "x")
        #expect(tree.failure("dir") == .notAFile)
        // A FIFO without a writer: refused at once, never blocks the reader.
        #expect(mkfifo(tree.root + "/fifo", 0o644) == 0)
        #expect(tree.failure("fifo") == .notAFile)
    }

    @Test func oversizeFiles() throws {
        let tree = try makeTree()
        try tree.write("ten.txt", "0123456789")
        #expect(tree.failure("ten.txt", maxBytes: 9) == .tooLarge(10))
        #expect(tree.failure("ten.txt", maxBytes: 9)?.reason == "too_large")
        guard case .success(let file) = tree.read("ten.txt", maxBytes: 10) else {
            Issue.record("a file of exactly maxBytes must be read")
            return
        }
        #expect(file.size == 10)
    }

    @Test func largeFilesAreReadWhole() throws {
        let tree = try makeTree()
        var bytes = [UInt8](repeating: 0, count: 20 << 20)
        for i in stride(from: 0, to: bytes.count, by: 4093) { bytes[i] = UInt8(truncatingIfNeeded: i) }
        try Data(bytes).write(to: URL(fileURLWithPath: tree.root + "/big.bin"))
        let file = try FileReader.read(root: tree.root, relativePath: "big.bin", maxBytes: 64 << 20)
        #expect(file.size == bytes.count)
        #expect(file.bytes == bytes)
    }

    /// Root bypasses permission bits, so as root the check runs with this thread's filesystem uid switched
    /// to `nobody` (setfsuid is per thread and drops CAP_DAC_OVERRIDE until it is switched back).
    @Test func unreadableFiles() throws {
        let tree = try makeTree()
        try tree.write("locked.txt", "x")
        try tree.write("closed/inner.txt", "x")
        chmod(tree.root + "/locked.txt", 0)
        chmod(tree.root + "/closed", 0)
        let failures: (ReadFailure?, ReadFailure?) = asUnprivileged {
            (tree.failure("locked.txt"), tree.failure("closed/inner.txt"))
        }
        #expect(failures.0 == .unreadable("permission denied"))
        #expect(failures.1 == .unreadable("permission denied"))
        #expect(failures.0?.reason == "unreadable")
    }

    @Test func aMissingRootIsUnreadableNotVanished() {
        let missing = NSTemporaryDirectory() + "filefleet-no-such-root-" + UUID().uuidString
        #expect(throws: ReadFailure.self) { try FileReader.read(root: missing, relativePath: "a", maxBytes: 10) }
        do throws(ReadFailure) {
            _ = try FileReader.read(root: missing, relativePath: "a", maxBytes: 10)
        } catch {
            #expect(error.reason == "unreadable")
        }
    }

    @Test func reasonsAreStable() {
        #expect(ReadFailure.vanished.reason == "vanished")
        #expect(ReadFailure.unreadable("x").reason == "unreadable")
        #expect(ReadFailure.tooLarge(1).reason == "too_large")
        #expect(ReadFailure.escapesRoot.reason == "escapes_root")
        #expect(ReadFailure.invalidPath.reason == "invalid_path")
        #expect(ReadFailure.notAFile.reason == "not_a_file")
        #expect(FileReader.failure(errno: ENOENT) == .vanished)
        #expect(FileReader.failure(errno: EACCES) == .unreadable("permission denied"))
        #expect(FileReader.failure(errno: EIO).reason == "unreadable")
    }

    @Test func randomPathsNeverLeaveTheRoot() async throws {
        let tree = try makeTree()
        try tree.write("a/b.md", "inside-b")
        try tree.write("c.txt", "inside-c")
        try tree.link("a/out", to: "../../outside")
        try tree.link("a/in", to: "../a")
        try tree.link("abs", to: tree.outside)
        try tree.link("a/loop", to: "loop")
        let parts = ["a", "b.md", "c.txt", "out", "in", "abs", "loop", "secret.txt", "outside", "..", ".", "", "/",
                     "\u{0}", "é", "\u{301}", " ", "\n", "a/b.md", "../outside/secret.txt", tree.outside]
        await propertyCheck(count: 800, input: Gen.int(in: 0...(parts.count - 1)).array(of: 0...8)) { picks in
            let path = picks.map { parts[$0] }.joined(separator: picks.count % 2 == 0 ? "/" : "")
            switch tree.read(path) {
            case .success(let file):
                let text = String(decoding: file.bytes, as: UTF8.self)
                #expect(text == "inside-b" || text == "inside-c", "\(path) read \(text)")
                #expect(RelativePath.isValid(path))
            case .failure(let failure):
                #expect(!failure.reason.isEmpty)
            }
        }
    }
}

/// Runs `body` with this thread's filesystem uid set to `nobody` when running as root.
private func asUnprivileged<T>(_ body: () -> T) -> T {
    // glibc's setfsuid is declared in <sys/fsuid.h>, which the Glibc module leaves out.
    typealias SetFSUID = @convention(c) (UInt32) -> Int32
    guard geteuid() == 0, let symbol = dlsym(nil, "setfsuid") else { return body() }
    let setfsuid = unsafeBitCast(symbol, to: SetFSUID.self)
    let previous = setfsuid(65534)
    defer { _ = setfsuid(UInt32(previous)) }
    return body()
}
