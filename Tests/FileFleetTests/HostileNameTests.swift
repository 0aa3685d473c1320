import Foundation
import Glibc
import PropertyBased
import Testing
@testable import FileFleet

/// Names that are not valid UTF-8 and what a walk makes of symlinks (docs/hostile-input.md).
@Suite struct HostileNameTests {
    @Test func invalidNamesAreEscapedLosslessly() async {
        #expect(InvalidName.escaped(Array("plain/é.md".utf8)) == "plain/é.md")
        #expect(InvalidName.escaped([0x61, 0xff, 0x2e, 0x6d, 0x64]) == #"a\xff.md"#)
        #expect(InvalidName.escaped(Array(#"back\slash"#.utf8) + [0xc3]) == #"back\\slash\xc3"#)
        #expect(InvalidName.escaped([0xe2, 0x82]) == #"\xe2\x82"#)  // a truncated sequence, byte by byte
        #expect(InvalidName.escaped([0xed, 0xa0, 0x80]) == #"\xed\xa0\x80"#)  // a UTF-16 surrogate
        #expect(InvalidName.escaped([0xc0, 0xaf]) == #"\xc0\xaf"#)  // an overlong `/`
        #expect(InvalidName.unescaped(#"a\q"#) == nil)
        await propertyCheck(count: 2000, input: Gen<UInt8>.value(in: 0...255).array(of: 0...24)) { bytes in
            let escaped = InvalidName.escaped(bytes)
            #expect(InvalidName.unescaped(escaped) == bytes)
            #expect(!escaped.utf8.contains(0) || bytes.contains(0))
            // Byte-wise: `contains("\\")` would miss a backslash that a combining mark joins.
            if let valid = String(validating: bytes, as: UTF8.self), !bytes.contains(UInt8(ascii: "\\")) {
                #expect(escaped == valid)
            }
        }
    }

    /// `/` or `.` followed by a combining mark is one Character to Swift's `String`; paths are
    /// judged byte by byte, as the kernel does.
    @Test func walkJudgesNamesThatStartWithACombiningMarkByTheirBytes() throws {
        let tree = try ScratchTree("walk")
        let mark = "\u{301}"
        try tree.write("d/\(mark)x.md", "x")
        try tree.write("d/.\(mark)hidden.md", "x")
        try tree.write(".\(mark)dir/y.md", "x")
        let (files, invalid) = try tree.walk()
        #expect(invalid.isEmpty)
        #expect(files.map { Array($0.path.utf8) } == [Array("d/\(mark)x.md".utf8)], "\(files.map(\.path))")
        // A pattern without `/` also matches the file name.
        let (named, _) = try tree.walk(PathFilter(includes: ["\(mark)x.md"]))
        #expect(named.map { Array($0.path.utf8) } == [Array("d/\(mark)x.md".utf8)])
        let (excluded, _) = try tree.walk(PathFilter(excludes: ["\(mark)*"]))
        #expect(excluded.isEmpty, "\(excluded.map(\.path))")
    }

    @Test func walkReportsInvalidNamesEscapedAndFiltered() throws {
        let tree = try ScratchTree("walk")
        try tree.write("ok.md", "x")
        try tree.rawFile([0x62, 0x61, 0x64, 0xff, 0x2e, 0x6d, 0x64])                 // bad\xff.md
        try tree.rawFile([0x2e, 0x68, 0x69, 0x64, 0xfe])                             // .hid\xfe: hidden
        try tree.rawDirectory([0x64, 0x69, 0x72, 0xc3, 0x28])                        // dir\xc3( with a file in it
        let (files, invalid) = try tree.walk()
        #expect(files.map(\.path) == ["ok.md"])
        #expect(Set(invalid) == [#"bad\xff.md"#, #"dir\xc3("#])
        let (_, excluded) = try tree.walk(PathFilter(excludes: ["*.md"]))
        #expect(excluded == [#"dir\xc3("#])
    }

    @Test func walkListsLinksByTheirTargets() throws {
        let tree = try ScratchTree("walk")
        try tree.write("a/real.md", "0123456789")
        try tree.write("../outside/secret.txt", "SECRET")
        try tree.link("inside.md", to: "a/real.md")
        try tree.link("dangling.md", to: "a/missing.md")
        try tree.link("dir-link", to: "a")
        try tree.link("outside-dir", to: "../outside")
        try tree.link("outside-file.txt", to: "../outside/secret.txt")
        try tree.link("absolute.txt", to: tree.base + "/outside/secret.txt")
        try tree.link("loop", to: "loop")
        let (files, invalid) = try tree.walk()
        #expect(invalid.isEmpty)
        let byPath = Dictionary(uniqueKeysWithValues: files.map { ($0.path, $0) })
        #expect(Set(byPath.keys) == ["a/real.md", "inside.md", "outside-dir", "outside-file.txt", "absolute.txt"])
        #expect(byPath["inside.md"]?.size == 10)  // the target's size, so the planner sees it change
        #expect(byPath["inside.md"]?.mtimeMicros == byPath["a/real.md"]?.mtimeMicros)
        // Listed, but the reader refuses to follow them: they are quarantined, never read.
        for path in ["outside-dir", "outside-file.txt", "absolute.txt"] {
            #expect(throws: ReadFailure.escapesRoot) {
                try FileReader.read(root: tree.root, relativePath: path, maxBytes: 1 << 20)
            }
        }
    }
}

private extension ScratchTree {
    func rawFile(_ name: [UInt8]) throws {
        let fd = withRaw(name) { open($0, O_CREAT | O_WRONLY, 0o644) }
        guard fd >= 0 else { throw POSIXError(.EIO) }
        close(fd)
    }

    func rawDirectory(_ name: [UInt8]) throws {
        guard withRaw(name, { mkdir($0, 0o755) }) == 0 else { throw POSIXError(.EIO) }
        let fd = withRaw(name + Array("/inner.md".utf8)) { open($0, O_CREAT | O_WRONLY, 0o644) }
        guard fd >= 0 else { throw POSIXError(.EIO) }
        close(fd)
    }

    private func withRaw<T>(_ name: [UInt8], _ body: (UnsafePointer<CChar>) -> T) -> T {
        let path = Array(root.utf8) + [UInt8(ascii: "/")] + name + [0]
        return path.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) } }
    }

    func walk(_ filter: PathFilter = PathFilter()) throws -> ([ListedFile], [String]) {
        var files: [ListedFile] = []
        var invalid: [String] = []
        try DirectoryWalker(root: root, filter: filter).walk(file: { files.append($0) }, invalidName: { invalid.append($0) })
        return (files.sorted { $0.path < $1.path }, invalid)
    }
}
