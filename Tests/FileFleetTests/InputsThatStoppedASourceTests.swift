@testable import FileFleet
import FleetCrypto
import FleetPostgres
import Foundation
import Glibc
import Testing
import TestSupport

/// Inputs that used to stop a source (a crash, an abort on every rerun, a failure on every run) or
/// vanish silently (a file in neither `documents` nor `failures`), found by a hunt through classes
/// of hostile trees (SPEC §6.8, §6.11). Each test is the class, not only the example that found it.
@Suite struct InputsThatStoppedASourceTests {
    /// A stored file that becomes something that is not a file — a directory, a FIFO, a socket, a
    /// link loop, a link chain past the kernel's limit — is gone: its row is deleted and the run
    /// completes (it failed `not_a_file` or `unreadable` on every run, its stale row kept).
    @Test func aFileThatStopsBeingAFileIsGoneNotAFailureForever() async throws {
        let fleet = try await HostileFleet()
        let tree = try HostileBase("not-a-file")
        let becoming = ["to-dir.md", "to-fifo.md", "to-socket.md", "to-loop.md", "to-pair.md", "to-chain.md", "kept.md"]
        for name in becoming { try tree.write(name, "# \(name)\n") }
        let first = try await fleet.sync(tree.root, sourceID: "becoming")
        #expect(first.status == .completed && first.imported == becoming.count, "\(first.json())")

        try tree.remove("to-dir.md")
        try tree.write("to-dir.md/inside.md", "# inside\n")
        try tree.remove("to-fifo.md")
        #expect(mkfifo(tree.root + "/to-fifo.md", 0o644) == 0)
        try tree.remove("to-socket.md")
        try Self.bindSocket(at: tree.root + "/to-socket.md")
        try tree.remove("to-loop.md")
        try tree.link("to-loop.md", "to-loop.md")
        try tree.remove("to-pair.md")
        try tree.link("to-pair.md", "pair-b")
        try tree.link("pair-b", "to-pair.md")
        // 45 links in a row: more than the kernel (and the reader) follow.
        try tree.remove("to-chain.md")
        try tree.link("to-chain.md", "chain-1")
        for i in 1..<45 { try tree.link("chain-\(i)", "chain-\(i + 1)") }
        try tree.write("chain-45", "# end of the chain\n")

        let second = try await fleet.sync(tree.root, sourceID: "becoming")
        #expect(second.status == .completed && second.exitCode == 0, "\(second.json())")
        #expect(try await fleet.failures("becoming").isEmpty)
        let paths = Set(try await fleet.documents().all.map(\.path))
        for gone in becoming.dropLast() { #expect(!paths.contains(gone), "\(gone) kept its row") }
        #expect(paths.contains("to-dir.md/inside.md") && paths.contains("kept.md"), "\(paths.sorted())")

        let third = try await fleet.sync(tree.root, sourceID: "becoming")
        #expect(third.status == .completed && third.planned == 0, "\(third.json())")
    }

    /// mtimes a file system can hold but a microsecond count or PostgreSQL cannot: far future (the
    /// walk crashed on the overflow, every run), before year 1 (quarantined `rejected` every run),
    /// and PostgreSQL's own limits. tmpfs keeps any 64-bit second (ext4 clamps them).
    @Test(.enabled(if: FileManager.default.isWritableFile(atPath: "/dev/shm")))
    func extremeModificationTimesAreStoredAndSeenAgainAsUnchanged() async throws {
        let fleet = try await HostileFleet()
        let root = "/dev/shm/filefleet-mtimes-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let seconds: [String: Int] = ["far-future.md": 99_999_999_999_999, "max.md": Int.max, "min.md": Int.min,
                                      "before-year-1.md": -62_167_219_201, "ancient.md": -99_999_999_999,
                                      "year-1.md": -62_135_596_800, "now.md": 1_765_000_000]
        for (name, second) in seconds {
            try Data("# \(name)\n".utf8).write(to: URL(fileURLWithPath: root + "/" + name))
            var times = [timespec(tv_sec: second, tv_nsec: 0), timespec(tv_sec: second, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, root + "/" + name, &times, 0) == 0, "\(name): \(String(cString: strerror(errno)))")
        }
        let first = try await fleet.sync(root, sourceID: "mtimes")
        #expect(first.status == .completed && first.imported == seconds.count, "\(first.json())")
        #expect(try await fleet.failures("mtimes").isEmpty)
        let stored = try await fleet.withConnection { c in
            try await c.query("""
                SELECT path, mtime::text FROM \(unescaped: fleet.schema.documents) WHERE source_id = 'mtimes'
                """).map { (try $0.decode(String.self, 0), try $0.decode(String.self, 1)) }
        }
        let mtimes = Dictionary(uniqueKeysWithValues: stored)
        #expect(mtimes["year-1.md"] == "0001-01-01 00:00:00+00", "\(mtimes)")
        #expect(mtimes["before-year-1.md"] == "0002-12-31 23:59:59+00 BC", "year 0 is 1 BC, a leap year: \(mtimes)")
        #expect(mtimes["min.md"] == "4714-11-24 00:00:00+00 BC", "clamped to PostgreSQL's earliest: \(mtimes)")
        #expect(mtimes["max.md"] == mtimes["far-future.md"] && mtimes["max.md"]?.hasPrefix("287") == true, "\(mtimes)")
        // Nothing changed: the next walk computes the same values and plans nothing.
        let second = try await fleet.sync(root, sourceID: "mtimes")
        #expect(second.status == .completed && second.planned == 0, "\(second.json())")
    }

    @Test func timestampsOfFilesClampToWhatPostgreSQLHolds() {
        #expect(Timestamps.micros(timespec(tv_sec: 1, tv_nsec: 999)) == 1_000_000)
        #expect(Timestamps.micros(timespec(tv_sec: -1, tv_nsec: 500_000)) == -999_500)
        #expect(Timestamps.micros(timespec(tv_sec: .max, tv_nsec: 0)) == Timestamps.latest)
        #expect(Timestamps.micros(timespec(tv_sec: 9_223_372_036_854, tv_nsec: 999_999_999)) == Timestamps.latest)
        #expect(Timestamps.micros(timespec(tv_sec: 8_999_999_999_999, tv_nsec: 0)) == 8_999_999_999_999_000_000)
        #expect(Timestamps.micros(timespec(tv_sec: .min, tv_nsec: 0)) == Timestamps.earliest)
        #expect(Timestamps.micros(timespec(tv_sec: -300_000_000_000, tv_nsec: 0)) == Timestamps.earliest)
        #expect(PostgresTimestamp.format(micros: -62_135_596_800_000_000) == "0001-01-01 00:00:00+00")
        #expect(PostgresTimestamp.format(micros: -62_135_596_800_000_001) == "0001-12-31 23:59:59.999999+00 BC")
        #expect(PostgresTimestamp.format(micros: Timestamps.earliest) == "4714-11-24 00:00:00+00 BC")
    }

    /// A directory the importing user cannot list: its files were in neither table. Now the
    /// directory is quarantined as one entry (`unreadable_directory`), and leaves once it can be
    /// listed. Run as `nobody` (root reads everything), through the CLI.
    @Test(.enabled(if: Command.isRoot), .timeLimit(.minutes(2)))
    func aDirectoryThatCannotBeListedIsQuarantinedNotSilentlySkipped() async throws {
        let fleet = try await Fleet()
        let tree = try HostileBase("closed-dir")
        chmod(tree.base, 0o755)
        try tree.write("open.md", "# open\n")
        try tree.write("closed/inside.md", "# inside\n")
        try tree.write("closed/deeper/more.md", "# more\n")
        chmod(tree.root + "/closed", 0o000)
        defer { chmod(tree.root + "/closed", 0o755) }
        // The server's password file is root's alone: nobody gets the password as a deployment
        // would give it, in a file of its own.
        let passwordFile = tree.base + "/postgres-password"
        try fleet.postgres.password.write(toFile: passwordFile, atomically: false, encoding: .utf8)
        chmod(passwordFile, 0o600)
        chown(passwordFile, 65534, 65534)
        func syncAsNobody() throws -> (status: Int32, output: String) {
            let arguments = [try FleetCLI.binary(), "sync", tree.root, "--source-id", "closed", "--json",
                             "--postgres-password-file", passwordFile] + fleet.connectionArguments
            do {
                return (0, try Command.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups"] + arguments))
            } catch let error as CommandError {
                return (error.status, error.output)
            }
        }
        let closed = try syncAsNobody()
        #expect(closed.status == 3, "\(closed.output)")
        let failures = try await fleet.query { c in
            try await c.query("SELECT path, reason, message FROM filefleet.failures WHERE source_id = 'closed'")
                .map { (try $0.decode(String.self, 0), try $0.decode(String.self, 1), try $0.decode(String.self, 2)) }
        }
        #expect(failures.map(\.0) == ["closed"] && failures.map(\.1) == ["unreadable_directory"], "\(failures)")
        #expect(failures.first?.2.contains("permission") == true, "\(failures)")
        #expect(closed.output.contains("event=quarantined") && closed.output.contains("unreadable_directory"), "\(closed.output)")

        chmod(tree.root + "/closed", 0o755)
        let opened = try syncAsNobody()
        #expect(opened.status == 0, "\(opened.output)")
        let counts = try await fleet.query { c in
            let row = try await c.query("""
                SELECT (SELECT count(*) FROM filefleet.documents WHERE source_id = 'closed'),
                       (SELECT count(*) FROM filefleet.failures WHERE source_id = 'closed')
                """)[0]
            return (try row.decode(Int.self, 0), try row.decode(Int.self, 1))
        }
        #expect(counts.0 == 3 && counts.1 == 0, "\(counts)")
        await fleet.shutdown()
    }

    /// YAML that is valid and shallow was refused as nesting too deeply: the bound counted every
    /// `-`, `:` and `?` of a line and every bracket of the whole block. Deep nesting is still refused.
    @Test func shallowFrontmatterIsNotRefusedAsTooDeep() {
        let uuids = (0..<150).map { _ in UUID().uuidString.lowercased() }.joined(separator: " ")
        let shallow = [
            "sep: \"" + String(repeating: "-", count: 500) + "\"",
            (0..<1000).map { "k\($0): [a]" }.joined(separator: "\n"),
            "ids: " + uuids,
            "times: " + (0..<260).map { _ in "12:00:01" }.joined(separator: " "),
            "list: [" + (0..<100_000).map { "i\($0)" }.joined(separator: ", ") + "]",
            "nested: {a: [1, {b: [2, 3]}], c: d}",
            "dashes: a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r-s-t-u-v-w-x-y-z" + String(repeating: "-x", count: 600),
        ]
        for yaml in shallow {
            let bytes = Array(yaml.utf8)
            let bound = bytes.withUnsafeBufferPointer { Frontmatter.nestingBound($0) }
            #expect(bound <= Frontmatter.maxNestingBound, "\(yaml.prefix(60))…: bound \(bound)")
            let result = bytes.withUnsafeBufferPointer { Frontmatter.parse($0) }
            if case .failure(let problem) = result { Issue.record("\(yaml.prefix(60))…: \(problem.message)") }
        }
        // Deep, in every spelling that can hide a closing bracket or an opening one.
        let deep = [
            "x: " + String(repeating: "[", count: 2000) + String(repeating: "]", count: 2000),
            "x: " + String(repeating: "[", count: 600) + " # ]]]]]]]]\n" + String(repeating: "[", count: 600),
            "x: \"]]]]]]]]\" " + String(repeating: "[", count: 1000),
            "x: " + String(repeating: "[\"a\":", count: 600) + "1",
            String(repeating: "- ", count: 600) + "a",
        ]
        for yaml in deep {
            let bound = Array(yaml.utf8).withUnsafeBufferPointer { Frontmatter.nestingBound($0) }
            #expect(bound > Frontmatter.maxNestingBound, "\(yaml.prefix(40))…: bound \(bound)")
        }
    }

    /// An integer longer than PostgreSQL's numeric holds quarantined its whole file (`rejected`,
    /// every run); SPEC §5: a value JSON cannot hold is kept as text.
    @Test func anEnormousIntegerIsKeptAsText() {
        let digits = "1" + String(repeating: "0", count: 140_000)
        let doc = Importer.importFile(bytes: Array("---\nn: \(digits)\nm: -\(digits)\nok: 12345678901234567890123\n---\nbody".utf8),
                                      path: "big.md", mtime: Date())
        #expect(doc.frontmatterError == nil)
        #expect(doc.frontmatterJSON == #"{"n":"\#(digits)","m":"-\#(digits)","ok":12345678901234567890123}"#,
                "\(doc.frontmatterJSON?.prefix(80) ?? "nil")")
    }

    /// Files a run's filter leaves out (an exclude added, an include narrowed) kept their rows in
    /// directory mode: planned as gone, found on disk by the worker and counted unchanged. Git mode
    /// removed them already. Now their rows go, checkpointed `deleted`, and come back without the filter.
    @Test func filesTheFilterNoLongerTakesLoseTheirRows() async throws {
        let fleet = try await HostileFleet()
        let tree = try HostileBase("refiltered")
        let files = ["a.md", "b.txt", "sub/c.md", "sub/deep/d.md", "keep/e.md"]
        for name in files { try tree.write(name, "# \(name)\n") }
        func sync(includes: [String] = [], excludes: [String] = []) async throws -> SyncSummary {
            var options = SyncOptions()
            options.sourceID = "refiltered"
            options.workers = 2
            options.includes = includes
            options.excludes = excludes
            options.pollInterval = .milliseconds(200)
            return try await Coordinator(settings: fleet.settings()).sync(tree.root, options: options)
        }
        func stored() async throws -> Set<String> { Set(try await fleet.documents().all.map(\.path)) }
        let all = try await sync()
        #expect(all.status == .completed && all.imported == 5, "\(all.json())")

        let excluded = try await sync(excludes: ["*.txt", "sub"])
        #expect(excluded.status == .completed && excluded.deleted == 3, "\(excluded.json())")
        #expect(try await stored() == ["a.md", "keep/e.md"])

        let narrowed = try await sync(includes: ["keep/*"])
        #expect(narrowed.status == .completed && narrowed.deleted == 1, "\(narrowed.json())")
        #expect(try await stored() == ["keep/e.md"])

        let again = try await sync()
        #expect(again.status == .completed && again.imported == 4, "\(again.json())")
        #expect(try await stored() == Set(files))
    }

    /// A link to a file whose name is not valid UTF-8: the walk lists the link (its target is a
    /// file), and the reader, which decoded the target lossily, found nothing and called it gone:
    /// in neither table. Now it is quarantined, saying why.
    @Test func aLinkToANameThatIsNotUTF8IsQuarantinedNotLost() async throws {
        let fleet = try await HostileFleet()
        let tree = try HostileBase("link-to-bad-name")
        let bad: [UInt8] = Array("bad".utf8) + [0xff] + Array(".md".utf8)
        try tree.rawFile(bad, "# behind a bad name\n")
        let made = (bad + [0]).withUnsafeBufferPointer {
            $0.withMemoryRebound(to: CChar.self) { symlink($0.baseAddress!, tree.root + "/link.md") }
        }
        #expect(made == 0)
        try tree.write("plain.md", "# plain\n")
        let summary = try await fleet.sync(tree.root, sourceID: "bad-target", maxAttempts: 1)
        #expect(summary.status == .completed_with_failures, "\(summary.json())")
        let failures = try await fleet.failures("bad-target")
        #expect(failures["link.md"]?.reason == "unreadable", "\(failures)")
        #expect(failures["link.md"]?.message.contains("not valid UTF-8") == true, "\(failures)")
        #expect(failures[#"bad\xff.md"#]?.reason == InvalidName.reason, "\(failures)")
        #expect(try await fleet.documents()["plain.md"] != nil)
    }

    @Test func aFilterTakesAPathOnlyIfTheWalkReachesIt() {
        let filter = PathFilter(excludes: ["sub", "*.tmp"])
        #expect(filter.takes("a.md") && filter.takes("other/sub.md"))
        #expect(!filter.takes("sub/c.md") && !filter.takes("sub/deep/d.md") && !filter.takes("x/y.tmp"))
        #expect(!PathFilter().takes(".hidden/a.md") && !PathFilter().takes("a/.b.md"))
        #expect(PathFilter(includes: [".hidden/a.md"]).takes(".hidden/a.md"))
    }

    static func bindSocket(at path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, byte) in path.utf8.prefix(buffer.count - 1).enumerated() { buffer[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
    }
}

/// Git mode's share of the hunt: what `git status` or the diff report that cannot be a key.
extension GitModeTests {
    /// An untracked path too long to be a key stopped the source: the worktree list (rechecked by
    /// the next run) is keyed by path, and its insert failed the plan's transaction on every run.
    @Test func gitUntrackedPathTooLongToStoreIsQuarantinedNotAnAbortEveryRun() async throws {
        try repo.write("a.md", "# a\n")
        try repo.commit("one file")
        let long = (0..<14).map { "u\($0)" + String(repeating: "d", count: 197 - String($0).count) }.joined(separator: "/") + "/long.md"
        try repo.write(long, "# long and untracked\n")
        try repo.write("untracked.md", "# short and untracked\n")
        let first = try await sync()
        #expect(first.status == .completed_with_failures && first.imported == 2 && first.failed == 1, "\(first.json())")
        let failures = try await query("SELECT path, reason FROM \(schema.failures)")
            .map { (try $0.decode(String.self, 0), try $0.decode(String.self, 1)) }
        #expect(failures.map(\.0) == [LongPath.key(long)] && failures.map(\.1) == [LongPath.reason], "\(failures)")
        try repo.write("b.md", "# b\n")
        try repo.commit("one more")
        let second = try await sync()
        #expect(second.exitCode == 3 || second.exitCode == 0, "\(second.json())")
        #expect(try await documents()["b.md"] != nil)
    }

    /// Names that are not valid UTF-8 were logged and skipped in git mode: in neither table. Now
    /// they are quarantined as in directory mode, and leave when the file is renamed.
    @Test func gitNamesThatAreNotUTF8AreQuarantinedAndLeaveWhenRenamed() async throws {
        let tracked: [UInt8] = Array("bad".utf8) + [0xff] + Array(".md".utf8)
        let untracked: [UInt8] = Array("loose".utf8) + [0xfe] + Array(".txt".utf8)
        try repo.write("good.md", "# good\n")
        try HostileBase.rawFile(in: repo.root, tracked, "# tracked, bad name\n")
        try repo.commit("a bad name")
        try HostileBase.rawFile(in: repo.root, untracked, "untracked, bad name\n")
        let first = try await sync()
        #expect(first.status == .completed_with_failures && first.failed == 2 && first.imported == 1, "\(first.json())")
        let reasons = Dictionary(uniqueKeysWithValues: try await query("SELECT path, reason FROM \(schema.failures)")
            .map { (try $0.decode(String.self, 0), try $0.decode(String.self, 1)) })
        #expect(reasons == [#"bad\xff.md"#: InvalidName.reason, #"loose\xfe.txt"#: InvalidName.reason], "\(reasons)")

        // An unrelated commit: the quarantine stays (the diff does not list the names again)...
        try repo.write("other.md", "# other\n")
        try repo.commit("unrelated")
        let second = try await sync()
        #expect(try await query("SELECT count(*) FROM \(schema.failures)").first?.decode(Int.self, 0) == 2, "\(second.json())")
        // ...and leaves when the names are fixed.
        try Self.rename(repo.root, tracked, to: "fixed.md")
        try Self.rename(repo.root, untracked, to: "loose.txt")
        try repo.commit("names fixed")
        let third = try await sync()
        #expect(third.status == .completed, "\(third.json())")
        #expect(try await query("SELECT count(*) FROM \(schema.failures)").first?.decode(Int.self, 0) == 0)
        try await expectTableEqualsWorkTree()
    }

    static func rename(_ root: String, _ name: [UInt8], to newName: String) throws {
        let from = Array(root.utf8) + [UInt8(ascii: "/")] + name + [0]
        let moved = from.withUnsafeBufferPointer {
            $0.withMemoryRebound(to: CChar.self) { Glibc.rename($0.baseAddress!, root + "/" + newName) }
        }
        guard moved == 0 else { throw POSIXError(.EIO) }
    }
}

extension GitModeTests {
    /// A tracked link's row kept its target's old bytes when only the target changed: the diff and
    /// the status name the target, never the link. Stored links are looked at by every run now.
    @Test func gitLinkRowFollowsItsTargetWhenOnlyTheTargetChanges() async throws {
        try repo.write("notes/target.md", "v1\n")
        try FileManager.default.createSymbolicLink(atPath: repo.root + "/link.md", withDestinationPath: "notes/target.md")
        try repo.commit("a link")
        _ = try await sync()
        #expect(try await documents()["link.md"] == SHA256.hex(Array("v1\n".utf8)))

        try repo.write("notes/target.md", "version two, longer\n")
        try repo.commit("the target changes")
        let committed = try await sync()
        #expect(committed.status == .completed && committed.imported == 2, "\(committed.json())")
        try await expectTableEqualsWorkTree()

        // Uncommitted, with the same size: found by the target's mtime.
        try await Task.sleep(for: .milliseconds(20))
        try repo.write("notes/target.md", "version six, longer\n")
        let edited = try await sync()
        #expect(edited.imported == 2, "\(edited.json())")
        try await expectTableEqualsWorkTree()
        let quiet = try await sync()
        #expect(quiet.planned == 0, "\(quiet.json())")
    }
}
