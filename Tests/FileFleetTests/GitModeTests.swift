@testable import FileFleet
import FleetCrypto
import FleetKafka
import FleetPostgres
import Foundation
import Testing
import TestSupport

/// Git mode (SPEC §6.3) end to end: the in-process coordinator with two workers against the real
/// servers, a fresh schema, topic and group per test, and a real repository in a temp directory.
@Suite struct GitModeTests {
    let schema: Schema
    let url: String
    let settings: FleetSettings
    let repo: GitFixture

    init() async throws {
        let environment = try await TestEnvironment.shared()
        schema = Schema(try await environment.makeSchema().name)
        url = environment.postgresURL
        settings = environment.fleetSettings(schema: schema)
        repo = try GitFixture()
    }

    // MARK: Helpers

    func sync(workers: Int = 2, directMax: Int = SyncOptions().directMax, excludes: [String] = [],
              allowMassDelete: Bool = false) async throws -> SyncSummary {
        var options = SyncOptions()
        options.directMax = directMax
        options.allowMassDelete = allowMassDelete
        options.workers = workers
        options.excludes = excludes
        options.pollInterval = .milliseconds(100)
        options.lease = LeaseTiming(heartbeat: .milliseconds(500))
        return try await coordinator().sync(repo.root, options: options)
    }

    /// A fresh consumer group per sync: Tansu can leave a group stuck when its last members leave
    /// together (SPEC §9.1), which the in-process workers do at the end of every sync.
    func coordinator() -> Coordinator {
        var settings = settings
        settings.group = TestEnvironment.uniqueName("g")
        return Coordinator(settings: settings, log: Log(component: "coordinator", enabled: false))
    }

    /// Plans a run with no workers, lets it publish, and interrupts it: the run stays open.
    func planAndInterrupt() async throws -> Int64 {
        // Through Kafka with no worker: the run stays open until it is cancelled.
        let task = Task { try await sync(workers: 0, directMax: 0) }
        defer { task.cancel() }
        var run: Int64? = nil
        for _ in 0..<200 where run == nil {
            try await Task.sleep(for: .milliseconds(100))
            run = try? await query("SELECT id FROM \(schema.runs) WHERE state = 'running'").first.map { try $0.decode(Int64.self, 0) }
        }
        try await Task.sleep(for: .milliseconds(500))
        task.cancel()
        let summary = try await task.value
        #expect(summary.status == .interrupted)
        return try #require(run)
    }

    func query(_ sql: String) async throws -> [PostgresRow] {
        let c = try await PostgresConnection.connect(url)
        defer { Task { await c.close() } }
        return Array(try await c.query(PostgresQuery(unsafeSQL: sql)))
    }

    /// path → sha256 of the stored documents.
    func documents() async throws -> [String: String] {
        var rows: [String: String] = [:]
        for row in try await query("SELECT path, sha256 FROM \(schema.documents)") {
            rows[try row.decode(String.self, 0)] = try row.decode(String.self, 1)
        }
        return rows
    }

    func plannedPaths(_ run: Int64?) async throws -> Set<String> {
        Set(try await query("SELECT path FROM \(schema.plannedPaths) WHERE run_id = \(try #require(run))")
            .map { try $0.decode(String.self, 0) })
    }

    func bookmark() async throws -> String? {
        try await query("SELECT bookmark FROM \(schema.sources)").first?.decode(String?.self, 0)
    }

    func expectTableEqualsWorkTree(excluding excluded: (String) -> Bool = { _ in false },
                                   sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let expected = try repo.workTree().filter { !excluded($0.key) }
        let stored = try await documents()
        #expect(stored == expected, sourceLocation: sourceLocation)
    }

    // MARK: Tests

    @Test func gitFirstSyncImportsTheTreeThenPlansOnlyWhatChanged() async throws {
        for i in 0..<30 { try repo.write("notes/n\(i).md", "# Note \(i)\n") }
        try repo.write("src/main.c", "int main() {}\n")
        try repo.write(".gitignore", "*.log\nbuild/\n")
        try repo.write("debug.log", "ignored\n")
        try repo.write("build/out.bin", "ignored\n")
        try repo.commit("initial")

        let first = try await sync()
        #expect(first.status == .completed)
        #expect(first.mode == "git")
        #expect(first.planned == 31)
        #expect(first.imported == 31)
        try await expectTableEqualsWorkTree()
        #expect(try await bookmark() == repo.head())
        let stored = try await documents()
        #expect(stored["debug.log"] == nil && stored["build/out.bin"] == nil && stored[".gitignore"] == nil)

        // A commit with adds, edits, deletes and a rename; then an uncommitted edit and an untracked file.
        try repo.write("notes/new.md", "# New\n")
        try repo.write("notes/n1.md", "# Note 1, edited\n")
        try repo.git("rm", "-q", "notes/n2.md")
        try repo.move("notes/n3.md", "notes/moved/n3.md")
        try repo.commit("changes")
        try repo.write("notes/n4.md", "# Note 4, not committed\n")
        try repo.write("scratch.txt", "untracked\n")
        try repo.write("more.log", "ignored too\n")

        let second = try await sync()
        #expect(second.status == .completed)
        #expect(second.mode == "git")
        #expect(try await plannedPaths(second.run_id) == ["notes/new.md", "notes/n1.md", "notes/n2.md", "notes/n3.md",
                                                          "notes/moved/n3.md", "notes/n4.md", "scratch.txt"])
        #expect(second.imported == 5 && second.deleted == 2)
        try await expectTableEqualsWorkTree()
        #expect(try await bookmark() == repo.head())

        // Nothing changed since: the uncommitted edit and the untracked file were imported as they
        // are, so they are not planned again.
        let unchanged = try await sync()
        #expect(unchanged.status == .completed && unchanged.planned == 0)

        // The uncommitted edit is reverted and the untracked file deleted: both are checked again.
        try repo.git("checkout", "--", "notes/n4.md")
        try FileManager.default.removeItem(atPath: repo.root + "/scratch.txt")
        let third = try await sync()
        #expect(try await plannedPaths(third.run_id) == ["notes/n4.md", "scratch.txt"])
        try await expectTableEqualsWorkTree()

        let fourth = try await sync()
        #expect(fourth.status == .completed && fourth.planned == 0)
    }

    /// Tracked links as in a directory walk: a link to a directory is not followed and not a
    /// failure, a dangling link is not a file (no `deleted` unless a row existed), and a pending
    /// uncommitted deletion is counted `deleted` once, on the run that removed the row.
    @Test func gitLinksToDirectoriesAndDanglingLinksAreNotFilesAndDeletedCountsRows() async throws {
        try repo.write("pages/index.md", "# Index\n")
        try repo.write("gone.md", "# Gone soon\n")
        try FileManager.default.createSymbolicLink(atPath: repo.root + "/pages.en", withDestinationPath: "pages")
        try FileManager.default.createSymbolicLink(atPath: repo.root + "/dangling.md", withDestinationPath: "nowhere.md")
        try repo.git("add", "-A")
        try repo.commit("links")

        let first = try await sync()
        #expect(first.status == .completed)
        #expect(first.failed == 0 && first.deleted == 0)
        #expect(try await query("SELECT count(*) FROM \(schema.failures)")[0].decode(Int.self, 0) == 0)
        #expect(Set(try await documents().keys) == ["pages/index.md", "gone.md"])

        // Deleted on disk, not committed: the row goes once and is counted once.
        try FileManager.default.removeItem(atPath: repo.root + "/gone.md")
        let second = try await sync()
        #expect(second.status == .completed && second.deleted == 1)
        let third = try await sync()
        #expect(third.status == .completed && third.deleted == 0 && third.failed == 0)
        #expect(Set(try await documents().keys) == ["pages/index.md"])
    }

    /// Size and mtime skip only what `git status` shows: an edit that kept both (rewritten within
    /// one mtime tick of its import) is still imported once it is committed.
    @Test func gitCommittedEditIsImportedEvenWithTheOldSizeAndMtime() async throws {
        try repo.write("f.md", "# one\n")
        try repo.commit("initial")
        #expect(try await sync().imported == 1)

        let path = repo.root + "/f.md"
        var old = stat()
        #expect(lstat(path, &old) == 0)
        try repo.write("f.md", "# two\n")
        var times = [old.st_atim, old.st_mtim]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        var new = stat()
        #expect(lstat(path, &new) == 0)
        #expect(new.st_size == old.st_size && new.st_mtim.tv_sec == old.st_mtim.tv_sec && new.st_mtim.tv_nsec == old.st_mtim.tv_nsec)
        try repo.commit("same size, same mtime")

        let next = try await sync()
        #expect(try await plannedPaths(next.run_id) == ["f.md"])
        #expect(next.imported == 1)
        try await expectTableEqualsWorkTree()
    }

    /// Two names that differ only in Unicode normal form are two files (SPEC §5), in git mode
    /// too: planned, imported and recognised as unchanged one by one, byte for byte.
    @Test func gitNamesInBothNormalFormsAreTwoFiles() async throws {
        let nfc = "caf\u{E9}.md", nfd = "cafe\u{301}.md"
        func hex(_ s: String) -> String { s.utf8.map { String(format: "%02x", $0) }.joined() }
        func storedPaths(_ table: String, _ condition: String = "true") async throws -> [String] {
            try await query("SELECT encode(convert_to(path, 'UTF8'), 'hex') FROM \(table) WHERE \(condition) ORDER BY 1")
                .map { try $0.decode(String.self, 0) }
        }
        try repo.write(nfc, "# composed\n")
        try repo.write(nfd, "# decomposed\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: repo.root).filter { $0.hasSuffix(".md") }.count == 2)
        try repo.commit("both forms")
        let first = try await sync()
        #expect(first.imported == 2)
        #expect(try await storedPaths(schema.documents) == [hex(nfc), hex(nfd)].sorted())

        try repo.write(nfd, "# decomposed, edited and not committed\n")
        let second = try await sync()
        #expect(try await storedPaths(schema.plannedPaths, "run_id = \(try #require(second.run_id))") == [hex(nfd)])
        #expect(second.imported == 1)
        let third = try await sync()
        #expect(third.planned == 0)
    }

    @Test func gitResumeSkipsBankedPaths() async throws {
        for i in 0..<40 { try repo.write("d/f\(i).txt", "file \(i)\n") }
        try repo.commit("initial")
        let run = try await planAndInterrupt()

        // Bank ten paths the way a worker would, then resume.
        let banked = (0..<10).map { "d/f\($0).txt" }
        let sourceID = URL(fileURLWithPath: repo.root).lastPathComponent
        let context = RunContext(id: 0, sourceID: sourceID, root: repo.root, state: .running, maxFileBytes: 1 << 20, maxAttempts: 3)
        let outcomes = banked.map { ($0, BatchImporter.readFile($0, run: context)) }
        let c = try await PostgresConnection.connect(url)
        _ = try await BatchWriter(schema: schema, worker: "test").write(run: run, sourceID: sourceID, outcomes: outcomes, on: c)
        await c.close()

        let resumed = try await sync()
        #expect(resumed.status == .completed)
        #expect(resumed.run_id == run)
        #expect(resumed.mode == "git")
        #expect(resumed.planned == 40)
        #expect(resumed.resumed == 10)
        #expect(resumed.imported == 30)
        try await expectTableEqualsWorkTree()
        #expect(try await bookmark() == repo.head())
    }

    @Test func gitRunAdvancesToItsPinNotToAHeadThatMoved() async throws {
        for i in 0..<10 { try repo.write("f\(i).md", "# \(i)\n") }
        try repo.commit("initial")
        #expect(try await sync().status == .completed)
        try repo.write("f1.md", "# one, edited\n")
        try repo.commit("edit")
        let pin = try repo.head()
        let run = try await planAndInterrupt()
        #expect(try await query("SELECT pin FROM \(schema.runs) WHERE id = \(run)").first?.decode(String?.self, 0) == pin)

        // HEAD moves while the run is open.
        try repo.write("f2.md", "# two, edited later\n")
        try repo.commit("later")
        let resumed = try await sync()
        #expect(resumed.status == .completed)
        #expect(resumed.run_id == run)
        #expect(try await bookmark() == pin)
        #expect(try repo.head() != pin)

        let next = try await sync()
        #expect(try await plannedPaths(next.run_id) == ["f2.md"])
        #expect(try await bookmark() == repo.head())
        try await expectTableEqualsWorkTree()
    }

    @Test func gitHistoryRewriteFallsBackToOneFullListing() async throws {
        for i in 0..<20 { try repo.write("f\(i).md", "# \(i)\n") }
        try repo.commit("initial")
        try repo.write("secret.md", "# oops\n")
        try repo.commit("leak")
        #expect(try await sync().status == .completed)
        let old = try repo.head()

        // Rewrite: drop the leaking commit's file, add another, prune the old objects.
        try repo.git("rm", "-q", "secret.md")
        try repo.write("f3.md", "# three, rewritten\n")
        try repo.write("added.md", "# added\n")
        try repo.git("add", "-A")
        try repo.git("commit", "-q", "--amend", "-m", "rewritten")
        try repo.git("reflog", "expire", "--expire=now", "--all")
        try repo.git("gc", "-q", "--prune=now")
        #expect(throws: (any Error).self) { try repo.git("cat-file", "-e", "\(old)^{commit}") }

        let recovered = try await sync()
        #expect(recovered.status == .completed)
        #expect(recovered.mode == "git")
        #expect(recovered.deleted == 1)
        try await expectTableEqualsWorkTree()
        #expect(try await bookmark() == repo.head())

        let rerun = try await sync()
        #expect(rerun.status == .completed && rerun.planned == 0)
    }

    /// SPEC §6.13 for the listing fallback: a rewrite to a nearly empty tree needs the flag; a
    /// commit that deletes the files is the user's word and needs none.
    @Test func gitListingFallbackThatEmptiesTheSourceNeedsTheFlag() async throws {
        for i in 0..<20 { try repo.write("f\(i).md", "# \(i)\n") }
        try repo.commit("initial")
        #expect(try await sync().status == .completed)
        let old = try repo.head()

        try repo.git("checkout", "-q", "--orphan", "fresh")
        try repo.git("rm", "-q", "-r", "-f", ".")
        try repo.write("only.md", "# only\n")
        try repo.commit("fresh start")
        try repo.git("branch", "-q", "-D", "main")
        try repo.git("reflog", "expire", "--expire=now", "--all")
        try repo.git("gc", "-q", "--prune=now")
        #expect(throws: (any Error).self) { try repo.git("cat-file", "-e", "\(old)^{commit}") }

        let refusal = await #expect(throws: UsageError.self) { try await sync() }
        #expect(refusal?.description.contains("refusing to delete 20 of 20 stored documents") == true,
                "\(String(describing: refusal))")
        #expect(try await documents().count == 20)

        let allowed = try await sync(allowMassDelete: true)
        #expect(allowed.status == .completed && allowed.deleted == 20 && allowed.imported == 1, "\(allowed.json())")
        try await expectTableEqualsWorkTree()

        // Deleting by commit is not a listing fallback: no flag needed.
        for i in 0..<15 { try repo.write("g\(i).md", "# \(i)\n") }
        try repo.commit("more")
        #expect(try await sync().imported == 15)
        try repo.git("rm", "-q", "-r", ".")
        try repo.commit("delete all")
        #expect(try await sync().deleted == 16)
        try await expectTableEqualsWorkTree()
    }

    /// SPEC §6.11 in git mode: a tracked path too long to be a key (it aborted planning with
    /// 54000) is quarantined `path_too_long` under its stand-in key; deleted, its row leaves.
    @Test func gitPathTooLongToStoreIsQuarantinedAndLeavesWhenDeleted() async throws {
        let long = (0..<14).map { "g\($0)" + String(repeating: "d", count: 197 - String($0).count) }.joined(separator: "/") + "/long.md"
        #expect(long.utf8.count > 2704)  // past what a btree entry holds
        for i in 0..<5 { try repo.write("f\(i).md", "# \(i)\n") }
        try repo.write(long, "# long\n")
        try repo.commit("with a long path")
        let first = try await sync()
        #expect(first.status == .completed_with_failures && first.failed == 1 && first.imported == 5, "\(first.json())")
        let failures = try await query("SELECT path, reason FROM \(schema.failures)")
            .map { (try $0.decode(String.self, 0), try $0.decode(String.self, 1)) }
        #expect(failures.map(\.0) == [LongPath.key(long)] && failures.map(\.1) == ["path_too_long"])
        try await expectTableEqualsWorkTree(excluding: { $0 == long })

        try repo.git("rm", "-q", long)
        try repo.commit("long path gone")
        let gone = try await sync()
        #expect(gone.status == .completed && gone.exitCode == 0, "\(gone.json())")
        #expect(try await query("SELECT count(*) FROM \(schema.failures)").first?.decode(Int.self, 0) == 0)
        try await expectTableEqualsWorkTree()
    }

    @Test func gitRewriteDiscardsAnOpenRunWhosePinIsGone() async throws {
        for i in 0..<10 { try repo.write("f\(i).md", "# \(i)\n") }
        try repo.commit("initial")
        let stale = try await planAndInterrupt()
        try repo.write("f0.md", "# zero, rewritten\n")
        try repo.git("rm", "-q", "f9.md")
        try repo.git("commit", "-q", "-a", "--amend", "-m", "rewritten")
        try repo.git("reflog", "expire", "--expire=now", "--all")
        try repo.git("gc", "-q", "--prune=now")

        let summary = try await sync()
        #expect(summary.status == .completed)
        #expect(summary.run_id != stale)
        #expect(summary.resumed == 0)
        #expect(try await query("SELECT state FROM \(schema.runs) WHERE id = \(stale)").first?.decode(String.self, 0) == "aborted")
        #expect(try await bookmark() == repo.head())
        try await expectTableEqualsWorkTree()
    }

    @Test func gitRenameToAnExcludedPathDeletesTheOldRow() async throws {
        try repo.write("docs/a.md", "# A\n")
        try repo.write("docs/b.md", "# B\n")
        try repo.commit("initial")
        #expect(try await sync(excludes: ["archive/*"]).status == .completed)
        #expect(try await documents().keys.sorted() == ["docs/a.md", "docs/b.md"])

        try repo.move("docs/a.md", "archive/a.md")
        try repo.commit("archive a")
        let summary = try await sync(excludes: ["archive/*"])
        #expect(summary.status == .completed)
        #expect(summary.deleted == 1)
        #expect(try await documents().keys.sorted() == ["docs/b.md"])
    }

    @Test func gitFilesThatBecomeIgnoredLoseTheirRows() async throws {
        try repo.write("keep.md", "# keep\n")
        try repo.write("tracked.tmp", "tracked, later untracked and ignored\n")
        try repo.commit("initial")
        try repo.write("notes.tmp", "untracked\n")
        #expect(try await sync().status == .completed)
        #expect(try await documents().keys.sorted() == ["keep.md", "notes.tmp", "tracked.tmp"])

        try repo.write(".gitignore", "*.tmp\n")
        try repo.git("rm", "-q", "--cached", "tracked.tmp")
        try repo.commit("ignore tmp")
        let summary = try await sync()
        #expect(summary.status == .completed)
        #expect(summary.deleted == 2)
        #expect(try await documents().keys.sorted() == ["keep.md"])
        #expect(FileManager.default.fileExists(atPath: repo.root + "/notes.tmp"))
        #expect(try await sync().planned == 0)
    }

    /// Git never ignores a tracked file: one that matches a `.gitignore` pattern (added with
    /// `--force`) is imported like any other, after a commit and with an uncommitted edit; an
    /// untracked file that matches is never imported.
    @Test func gitTrackedFileMatchingAnIgnorePatternIsImported() async throws {
        try repo.write(".gitignore", "*.gen.md\n")
        try repo.write("keep.md", "# keep\n")
        try repo.write("schema.gen.md", "# generated, v1\n")
        try repo.git("add", "-f", "schema.gen.md")
        try repo.commit("initial")
        try repo.write("local.gen.md", "# untracked and ignored\n")
        #expect(try await sync().status == .completed)
        #expect(try await documents().keys.sorted() == ["keep.md", "schema.gen.md"])

        try repo.write("schema.gen.md", "# generated, v2\n")
        try repo.write("local.gen.md", "# untracked and ignored, edited\n")
        try repo.commit("regenerate")
        let committed = try await sync()
        #expect(try await plannedPaths(committed.run_id) == ["schema.gen.md"])
        #expect(committed.imported == 1)
        try await expectTableEqualsWorkTree()

        try repo.write("schema.gen.md", "# generated, v3, not committed\n")
        let edited = try await sync()
        #expect(try await plannedPaths(edited.run_id) == ["schema.gen.md"])
        #expect(edited.imported == 1)
        try await expectTableEqualsWorkTree()
        #expect(try await documents()["local.gen.md"] == nil)
        #expect(try await sync().planned == 0)
    }

    /// A file git neither tracks nor shows untracked loses its row before anything is committed:
    /// one removed from the index that an ignore rule matches, and the files of a directory that
    /// became a nested repository.
    @Test func gitFilesGitNeitherTracksNorShowsLoseTheirRows() async throws {
        try repo.write("keep.md", "# keep\n")
        try repo.write("cache.md", "# tracked, then only on disk and ignored\n")
        try repo.commit("initial")
        try repo.write("vendor/a.md", "# untracked a\n")
        try repo.write("vendor/b.md", "# untracked b\n")
        #expect(try await sync().status == .completed)
        #expect(try await documents().keys.sorted() == ["cache.md", "keep.md", "vendor/a.md", "vendor/b.md"])

        try repo.write(".gitignore", "cache.md\n")
        try repo.git("rm", "-q", "--cached", "cache.md")
        try repo.git("init", "-q", "vendor")
        let summary = try await sync()
        #expect(summary.status == .completed)
        #expect(summary.deleted == 3 && summary.imported == 0, "\(summary.json())")
        #expect(try await documents().keys.sorted() == ["keep.md"])
        #expect(FileManager.default.fileExists(atPath: repo.root + "/cache.md"))
        #expect(FileManager.default.fileExists(atPath: repo.root + "/vendor/a.md"))
        #expect(try await sync().planned == 0)
    }

    @Test func gitFileDeletedAfterPlanningIsTreatedAsDeleted() async throws {
        for i in 0..<5 { try repo.write("f\(i).md", "# \(i)\n") }
        try repo.commit("initial")
        #expect(try await sync().status == .completed)
        try repo.write("f1.md", "# one, edited\n")
        try repo.write("f2.md", "# two, edited\n")
        try repo.commit("edit")
        _ = try await planAndInterrupt()
        try FileManager.default.removeItem(atPath: repo.root + "/f1.md")

        let summary = try await sync()
        #expect(summary.status == .completed)
        #expect(summary.deleted == 1 && summary.imported == 1)
        #expect(try await documents().keys.sorted() == ["f0.md", "f2.md", "f3.md", "f4.md"])
        try await expectTableEqualsWorkTree()
    }

    @Test func gitDirectorySourceThatBecomesARepositorySwitchesToGitMode() async throws {
        let plain = try GitFixture(initialize: false, root: repo.root + "-plain")
        try plain.write("a.md", "# a\n")
        try plain.write("b.md", "# b\n")
        try plain.write("c.log", "later ignored\n")
        var options = SyncOptions()
        options.workers = 2
        options.sourceID = "switch"
        options.pollInterval = .milliseconds(100)
        let first = try await coordinator().sync(plain.root, options: options)
        #expect(first.mode == "directory")
        #expect(try await documents().count == 3)

        try plain.git("init", "-q")
        try plain.write(".gitignore", "*.log\n")
        try plain.commit("now a repository")
        let second = try await coordinator().sync(plain.root, options: options)
        #expect(second.status == .completed)
        #expect(second.mode == "git")
        #expect(second.deleted == 1)
        #expect(try await documents().keys.sorted() == ["a.md", "b.md"])
        #expect(try await query("SELECT mode, bookmark FROM \(schema.sources)").first.map {
            [try $0.decode(String.self, 0), try $0.decode(String.self, 1)]
        } == ["git", try plain.head()])
        #expect(try await coordinator().sync(plain.root, options: options).planned == 0)
    }
}

/// Git's own view of a repository, and the failures the product must report clearly.
@Suite struct GitRepositoryTests {
    @Test func gitPathsWithOddNamesStreamRaw() throws {
        let repo = try GitFixture()
        let names = ["with space.md", "tab\there.md", "new\nline.md", "ünïcödé.md", "quote\"d.md"]
        for name in names { try repo.write(name, name) }
        try repo.commit("odd names")
        let git = GitRepository(root: repo.root)
        var listed: [String] = []
        try git.listFiles { listed.append($0.name ?? "?") }
        #expect(Set(listed) == Set(names))

        try repo.git("mv", "with space.md", "renamed.md")
        try repo.write("untracked here.md", "u")
        var status: [String: GitRepository.Status] = [:]
        try git.statusPaths { status[$0.name ?? "?"] = $1 }
        #expect(status == ["renamed.md": .tracked, "with space.md": .removedFromIndex, "untracked here.md": .untracked])
        let asked = Set(["renamed.md", "with space.md", "untracked here.md", "new\nline.md"].map(ExactPath.init))
        #expect(try git.tracked(among: asked) == Set(["renamed.md", "new\nline.md"].map(ExactPath.init)))

        let head = try #require(try git.head())
        try repo.commit("rename")
        var changed: [String: Bool] = [:]
        try git.changedPaths(from: head, to: try #require(try git.head())) { changed[$0.name ?? "?"] = $1 }
        #expect(changed == ["renamed.md": true, "with space.md": false, "untracked here.md": true])
        #expect(try git.hasCommit(head))
        #expect(try !git.hasCommit("0123456789abcdef0123456789abcdef01234567"))
    }

    @Test func gitFailuresAreClear() throws {
        let repo = try GitFixture()
        #expect(try GitRepository(root: repo.root).head() == nil)  // no commit yet
        let error = #expect(throws: GitError.self) {
            try GitRepository(root: repo.root).changedPaths(from: "HEAD~5", to: "HEAD") { _, _ in }
        }
        #expect(error?.description.contains("git diff") == true)
        #expect(error?.status == 128)

        let broken = try GitFixture(initialize: false)
        try broken.write(".git", "gitdir: /nonexistent\n")
        #expect(throws: UsageError.self) { try GitRepository(root: broken.root).head() }
    }

    @Test func gitCommandThatRunsTooLongIsKilled() throws {
        let repo = try GitFixture()
        let git = GitRepository(root: repo.root, timeout: .milliseconds(300))
        let started = ContinuousClock.now
        let error = #expect(throws: GitError.self) {
            try git.run(["-c", "alias.slow=!sleep 20", "slow"]) { _ in }
        }
        #expect(error?.description.contains("timed out") == true)
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}

/// A repository in a fresh temp directory.
struct GitFixture {
    let root: String

    init(initialize: Bool = true, root: String? = nil) throws {
        self.root = root ?? NSTemporaryDirectory() + TestEnvironment.uniqueName("repo")
        try FileManager.default.createDirectory(atPath: self.root, withIntermediateDirectories: true)
        if initialize { try git("init", "-q", "-b", "main") }
    }

    @discardableResult
    func git(_ arguments: String...) throws -> String {
        try Command.run("/usr/bin/git", ["-C", root, "-c", "user.name=t", "-c", "user.email=t@t"] + arguments,
                        environment: ["PATH": "/usr/bin:/bin", "HOME": root])
    }

    func write(_ path: String, _ text: String) throws {
        let url = URL(fileURLWithPath: root + "/" + path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func move(_ from: String, _ to: String) throws {
        try FileManager.default.createDirectory(atPath: root + "/" + (to as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try git("mv", from, to)
    }

    func commit(_ message: String) throws {
        try git("add", "-A")
        try git("commit", "-q", "-m", message)
    }

    func head() throws -> String {
        try git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// What the table must hold: path → sha256 of every file git lists, hidden ones aside.
    func workTree() throws -> [String: String] {
        var tree: [String: String] = [:]
        let listing = try git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
        for path in listing.split(separator: "\0").map(String.init) where !PathFilter.isHidden(path) {
            guard let bytes = FileManager.default.contents(atPath: root + "/" + path) else { continue }
            tree[path] = SHA256.hex([UInt8](bytes))
        }
        return tree
    }
}
