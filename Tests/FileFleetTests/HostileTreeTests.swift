import FleetPostgres
import Foundation
import Glibc
import Testing
@testable import FileFleet

/// The acceptance tree of issue 8, synced by the in-process fleet (docs/hostile-input.md).
@Suite struct HostileTreeTests {
    static let maxFileBytes = 200_000

    /// Paths that must be imported, and those that must be quarantined with their reason.
    static let badName: [UInt8] = Array("bad".utf8) + [0xff, 0xfe] + Array(" name.md".utf8)
    static let quarantined = ["escape-relative.md": "escapes_root", "escape-absolute.txt": "escapes_root",
                              "escape-dir": "escapes_root", "oversize.txt": "too_large",
                              #"bad\xff\xfe name.md"#: "invalid_name"]

    static func build(_ tree: HostileBase) throws -> [String] {
        var imported: [String] = []
        func file(_ path: String, _ bytes: [UInt8]) throws { try tree.write(path, bytes); imported.append(path) }
        func file(_ path: String, _ text: String) throws { try file(path, Array(text.utf8)) }

        try file("notes/plain.md", "---\ntitle: Plain\ntags: [a, b]\n---\n# Heading\nbody\n")
        try tree.link("escape-relative.md", "../outside/secret.txt")
        try tree.link("escape-absolute.txt", tree.secretPath)
        try tree.link("escape-dir", "../outside")
        try tree.link("inside-link.md", "notes/plain.md"); imported.append("inside-link.md")
        try tree.link("dangling.md", "notes/missing.md")  // not a file of the source: no row, no failure
        try tree.link("dir-link", "notes")                // directories are not followed: nothing under it
        try tree.write("oversize.txt", String(repeating: "o", count: maxFileBytes + 1))
        try file("name with spaces.md", "# Spaces\n")
        try file(#"quote"s 'single' `back`.txt"#, "quotes\n")
        try file("new\nline.md", "# New\nline\n")
        try file("caf\u{E9}.md", "# NFC\n")
        try file("cafe\u{301}.md", "# NFD\n")
        try file((1...60).map { "level-\($0)" }.joined(separator: "/") + "/deep.md", "# Deep\n")
        try file("empty.md", "")
        try file("empty.txt", "")
        try file("crlf-bom.md", [0xEF, 0xBB, 0xBF] + Array("---\r\ntitle: Windows\r\n---\r\n# H\r\nline\r\n".utf8))
        try file("latin1.txt", [0x63, 0x61, 0x66, 0xE9, 0x0A])
        try file("latin1.md", [0x23, 0x20, 0xE9, 0x0A])
        try file("huge-line.txt", String(repeating: "x", count: maxFileBytes - 10))
        try file("fm-number.md", "---\ntitle: 42\ncount: 7\n---\nbody\n")
        try file("fm-date.md", "---\ntitle: 2024-01-05\nwhen: 2024-01-05 10:00:00\n---\nbody\n")
        try file("fm-list.md", "---\ntitle: [Part, 2]\n---\nbody\n")
        try file("fm-null.md", "---\ntitle: null\n---\n# From Heading\n")
        try file("fm-keys.md", "---\n1: one\ntrue: yes\n2024-01-05: day\n[a, b]: list\n---\nbody\n")
        try file("fm-invalid.md", "---\na: [1, 2\n---\n# Body Title\ntext\n")
        try file("fm-unterminated.md", "---\ntitle: never closed\n# Heading\ntext\n")
        try tree.write(".hidden.md", "# hidden \(tree.secret)\n")  // skipped: dotfiles need an include
        try tree.rawFile(badName, "# bad name\n")
        mkfifo(tree.root + "/fifo", 0o644)  // not a file: skipped
        return imported
    }

    @Test func hostileTreeIsImportedOrQuarantined() async throws {
        let fleet = try await HostileFleet()
        let tree = try HostileBase("hostile")
        let imported = try Self.build(tree)

        let summary = try await fleet.sync(tree.root, sourceID: "hostile", maxFileBytes: Self.maxFileBytes, maxAttempts: 2)
        #expect(summary.status == .completed_with_failures, "\(summary.json())")
        #expect(summary.exitCode == 3)
        #expect(imported.count == 21)
        #expect(summary.planned == imported.count + Self.quarantined.count)
        #expect(summary.imported == imported.count)
        #expect(summary.failed == Self.quarantined.count)
        #expect(summary.resumed == 0)

        // sync's flags became the run's limits, which the workers read (SPEC §6.10: never from a message).
        let limits = try await fleet.withConnection { c in
            try await c.query("SELECT max_file_bytes, max_attempts FROM \(unescaped: fleet.schema.runs) WHERE id = \(summary.run_id!)")
                .map { (try $0.decode(Int.self, 0), try $0.decode(Int.self, 1)) }[0]
        }
        #expect(limits.0 == Self.maxFileBytes && limits.1 == 2)

        let failures = try await fleet.failures("hostile")
        #expect(failures.mapValues(\.reason) == Self.quarantined)
        #expect(failures["oversize.txt"]?.message == "too_large: \(Self.maxFileBytes + 1) bytes")
        #expect(failures.values.allSatisfy { $0.attempts == 1 })
        let status = try await fleet.withConnection { c in
            try await StatusReport.read(schema: fleet.schema, sourceID: "hostile", on: c)
        }
        #expect(Set(status.sources.first?.failures.map(\.path) ?? []) == Set(Self.quarantined.keys))
        #expect(status.sources.first?.run?.failed == Self.quarantined.count)

        let rows = try await fleet.documents()
        #expect(rows.paths == Set(imported.map { Array($0.utf8) }))
        for path in imported {
            let row = try #require(rows[path])
            #expect(row.sourceID == "hostile")
            #expect(try await fleet.matchesImporter(row, bytes: try tree.bytes(path)), "\(path)")
        }
        #expect(try await fleet.rowsContaining(tree.secret, hashOf: Array(tree.secret.utf8)) == 0)

        // Spot checks of §5 as a user reads them.
        #expect(rows["fm-number.md"]?.title == "42")
        #expect(rows["fm-number.md"]?.frontmatter == #"{"count": 7, "title": 42}"#)
        #expect(rows["fm-date.md"]?.title == "2024-01-05")
        #expect(rows["fm-date.md"]?.frontmatter == #"{"when": "2024-01-05T10:00:00Z", "title": "2024-01-05"}"#)
        #expect(rows["fm-list.md"]?.title == "Part, 2")
        #expect(rows["fm-null.md"]?.title == "From Heading")
        #expect(rows["fm-keys.md"]?.frontmatter?.contains(#""1": "one""#) == true)
        #expect(rows["fm-keys.md"]?.frontmatter?.contains(#""2024-01-05": "day""#) == true)
        #expect(rows["fm-invalid.md"]?.frontmatter == nil)
        #expect(rows["fm-invalid.md"]?.frontmatterError?.isEmpty == false)
        #expect(rows["fm-invalid.md"]?.body == "# Body Title\ntext\n")
        #expect(rows["fm-unterminated.md"]?.frontmatterError == "unterminated frontmatter")
        #expect(rows["fm-unterminated.md"]?.body == "---\ntitle: never closed\n# Heading\ntext\n")
        #expect(rows["crlf-bom.md"]?.title == "Windows")
        #expect(rows["crlf-bom.md"]?.body == "# H\r\nline\r\n")
        #expect(rows["latin1.txt"]?.kind == "binary" && rows["latin1.txt"]?.body == nil)
        #expect(rows["latin1.md"]?.kind == "binary")
        #expect(rows["huge-line.txt"]?.body?.utf8.count == Self.maxFileBytes - 10)
        #expect(rows["inside-link.md"]?.sha256 == rows["notes/plain.md"]?.sha256)
        #expect(rows["empty.md"]?.title == "empty" && rows["empty.md"]?.body == "")

        // The next run retries only the failures; invalid names are found again by the walk.
        let again = try await fleet.sync(tree.root, sourceID: "hostile", maxFileBytes: Self.maxFileBytes, maxAttempts: 2)
        #expect(again.status == .completed_with_failures, "\(again.json())")
        #expect(again.planned == Self.quarantined.count)
        #expect(again.failed == Self.quarantined.count)
        let retried = try await fleet.failures("hostile")
        #expect(retried.mapValues(\.reason) == Self.quarantined)
        #expect(retried.values.allSatisfy { $0.attempts == 2 })

        // Fixed on disk: the failures leave, the run completes, nothing else changes.
        for path in ["escape-relative.md", "escape-absolute.txt", "escape-dir", "oversize.txt"] { try tree.remove(path) }
        let raw = Array(tree.root.utf8) + [UInt8(ascii: "/")] + Self.badName + [0]
        _ = raw.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { unlink($0.baseAddress!) } }
        let fixed = try await fleet.sync(tree.root, sourceID: "hostile", maxFileBytes: Self.maxFileBytes, maxAttempts: 2)
        #expect(fixed.status == .completed, "\(fixed.json())")
        #expect(fixed.exitCode == 0)
        #expect(fixed.failed == 0)
        #expect(try await fleet.failures("hostile").isEmpty)
        #expect(try await fleet.documents().paths == Set(imported.map { Array($0.utf8) }))
        #expect(try await fleet.unplannedCheckpoints() == 0)
    }

    /// SPEC §6.13: an emptied (unmounted) source directory does not delete the source's documents.
    @Test func massDeletionIsRefusedWithoutTheFlag() async throws {
        let fleet = try await HostileFleet()
        let tree = try HostileBase("mass-delete")
        let paths = (0..<24).map { "dir-\($0 % 3)/note-\($0).md" }
        for path in paths { try tree.write(path, "# \(path)\n") }
        #expect(try await fleet.sync(tree.root, sourceID: "mount").status == .completed)

        // Half of them gone is allowed: 12 of 24 is not more than half.
        for path in paths.prefix(12) { try tree.remove(path) }
        let half = try await fleet.sync(tree.root, sourceID: "mount")
        #expect(half.status == .completed && half.deleted == 12, "\(half.json())")

        // The rest gone, as an unmounted volume looks: refused, naming the counts and the flag.
        for dir in ["dir-0", "dir-1", "dir-2"] { try tree.remove(dir) }
        let refusal = await #expect(throws: UsageError.self) { try await fleet.sync(tree.root, sourceID: "mount") }
        #expect(refusal?.description.contains("refusing to delete 12 of 12 stored documents") == true, "\(String(describing: refusal))")
        #expect(refusal?.description.contains("--allow-mass-delete") == true)
        #expect(try await fleet.documents().paths.count == 12)
        #expect(try await fleet.withConnection { c in
            try await FleetDB.int("SELECT count(*) FROM \(fleet.schema.runs) WHERE state = 'running'", on: c)
        } == 0)

        let allowed = try await fleet.sync(tree.root, sourceID: "mount", allowMassDelete: true)
        #expect(allowed.status == .completed && allowed.deleted == 12, "\(allowed.json())")
        #expect(try await fleet.documents().paths.isEmpty)

        // Under the floor a small source may be emptied without the flag.
        for i in 0..<10 { try tree.write("small-\(i).md", "# \(i)\n") }
        #expect(try await fleet.sync(tree.root, sourceID: "mount").imported == 10)
        for i in 0..<10 { try tree.remove("small-\(i).md") }
        #expect(try await fleet.sync(tree.root, sourceID: "mount").deleted == 10)
    }

    /// SPEC §6.11: a path too long to be a key (it stopped every sync of its source at planning,
    /// 54000 on `planned_paths_pkey`) is quarantined `path_too_long`; one at the limit imports.
    @Test func pathsTooLongToStoreAreQuarantinedAndTheRestImports() async throws {
        let fleet = try await HostileFleet()
        let tree = try HostileBase("long-path")
        /// A relative path of exactly `bytes` bytes: 200-byte directory names, then the file name.
        func path(_ bytes: Int, _ tag: String) -> String {
            var parts: [String] = []
            var length = 0
            while bytes - length > 250 {
                parts.append(tag + String(repeating: "d", count: 199 - tag.count))
                length += 200
            }
            let name = String(repeating: "f", count: bytes - length - tag.count - 3) + tag + ".md"
            return (parts + [name]).joined(separator: "/")
        }
        let atLimit = path(LongPath.maxBytes, "a"), over = path(LongPath.maxBytes + 1, "b"), far = path(3000, "c")
        #expect(atLimit.utf8.count == 2048 && over.utf8.count == 2049 && far.utf8.count == 3000)
        for p in [atLimit, over, far, "short.md"] { try tree.write(p, "# \(p.suffix(8))\n") }

        let first = try await fleet.sync(tree.root, sourceID: "long")
        #expect(first.status == .completed_with_failures && first.exitCode == 3, "\(first.json())")
        #expect(first.imported == 2 && first.failed == 2 && first.planned == 4)
        #expect(try await fleet.documents().paths == Set([atLimit, "short.md"].map { Array($0.utf8) }))
        let failures = try await fleet.failures("long")
        // `far`: its first directory past the limit stands for it (nothing under it fits either).
        let farDirectory = far.split(separator: "/").prefix(11).joined(separator: "/")
        #expect(farDirectory.utf8.count == 2199)
        #expect(Set(failures.keys) == Set([over, farDirectory].map(LongPath.key)))
        #expect(failures.values.allSatisfy { $0.reason == "path_too_long" && $0.message.contains("2048 bytes") })
        #expect(failures.keys.allSatisfy { $0.hasPrefix("b") || $0.hasPrefix("c") })

        // Found again by the next walk, not replanned as a path of its own; removed, it leaves.
        let again = try await fleet.sync(tree.root, sourceID: "long")
        #expect(again.status == .completed_with_failures && again.planned == 2 && again.failed == 2, "\(again.json())")
        try tree.remove("b" + String(repeating: "d", count: 198))
        try tree.remove("c" + String(repeating: "d", count: 198))
        let fixed = try await fleet.sync(tree.root, sourceID: "long")
        #expect(fixed.status == .completed && fixed.exitCode == 0, "\(fixed.json())")
        #expect(try await fleet.failures("long").isEmpty)
        #expect(try await fleet.documents().paths.count == 2)

        // A file deeper than PATH_MAX (it once vanished without a word): the walk stops at the first
        // directory past the limit and quarantines that directory, so the file is accounted for.
        let components = (0..<25).map { "e\($0)" + String(repeating: "d", count: 197 - String($0).count) }
        var fd = open(tree.root, O_DIRECTORY | O_RDONLY)
        for component in components {
            mkdirat(fd, component, 0o755)
            let next = openat(fd, component, O_DIRECTORY | O_RDONLY)
            close(fd)
            fd = next
        }
        let file = openat(fd, "deep.md", O_CREAT | O_WRONLY, 0o644)
        #expect(file >= 0 && write(file, "# deep\n", 7) == 7)
        close(file)
        close(fd)
        #expect(tree.root.utf8.count + components.count * 200 > Int(PATH_MAX))
        let deep = try await fleet.sync(tree.root, sourceID: "long")
        #expect(deep.status == .completed_with_failures && deep.failed == 1, "\(deep.json())")
        let directory = components.prefix(11).joined(separator: "/")  // the first past 2,048 bytes
        #expect(try await fleet.failures("long").mapValues(\.reason) == [LongPath.key(directory): "path_too_long"])
        _ = try Command.run("/bin/rm", ["-rf", tree.root + "/" + components[0]])
    }

    /// SPEC §6.11: files whose write the database rejects (a trigger's RAISE, a CHECK) are found by
    /// splitting the batch, quarantined `rejected` with the SQLSTATE, and the rest of the batch commits.
    @Test func filesTheDatabaseRejectsAreIsolatedAndTheRestCommits() async throws {
        let fleet = try await HostileFleet()
        let tree = try HostileBase("poison")
        let paths = (0..<300).map { "n/\($0).md" }
        for path in paths + ["n/poison.md", "n/check.md"] { try tree.write(path, "# \(path)\n") }
        let empty = try HostileBase("poison-empty")
        _ = try await fleet.sync(empty.root, sourceID: "empty")  // applies the schema
        try await fleet.withConnection { c in
            _ = try await c.executeScript("""
                CREATE FUNCTION \(fleet.schema.name).poison() RETURNS trigger LANGUAGE plpgsql AS $$
                  BEGIN IF NEW.path = 'n/poison.md' THEN RAISE EXCEPTION 'poison file %', NEW.path; END IF; RETURN NEW; END $$;
                CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON \(fleet.schema.documents)
                  FOR EACH ROW EXECUTE FUNCTION \(fleet.schema.name).poison();
                ALTER TABLE \(fleet.schema.documents) ADD CONSTRAINT no_check CHECK (path <> 'n/check.md');
                """)
        }
        let first = try await fleet.sync(tree.root, sourceID: "poison")
        #expect(first.status == .completed_with_failures && first.exitCode == 3, "\(first.json())")
        #expect(first.imported == 300 && first.failed == 2, "\(first.json())")
        let failures = try await fleet.failures("poison")
        #expect(failures.mapValues(\.reason) == ["n/poison.md": "rejected", "n/check.md": "rejected"])
        #expect(failures["n/poison.md"]?.message.contains("SQLSTATE P0001") == true, "\(failures)")
        #expect(failures["n/poison.md"]?.message.contains("poison file n/poison.md") == true)
        #expect(failures["n/check.md"]?.message.contains("SQLSTATE 23514") == true, "\(failures)")
        #expect(try await fleet.documents().paths == Set(paths.map { Array($0.utf8) }))

        try tree.remove("n/poison.md")
        try tree.remove("n/check.md")
        let fixed = try await fleet.sync(tree.root, sourceID: "poison")
        #expect(fixed.status == .completed && fixed.exitCode == 0, "\(fixed.json())")
        #expect(try await fleet.failures("poison").isEmpty)
    }

    /// Issue 12's acceptance tree: a file whose path is too long to be a key (point 1), a file
    /// deeper than PATH_MAX (point 2), a link to a directory, a poison file, and ordinary files.
    /// Every regular file ends up in `documents` or in `failures`; removing the poison lets the
    /// next sync commit everything else. The two long paths stay quarantined (`path_too_long`:
    /// `documents`' primary key cannot hold them, SPEC §5) until they are removed, so that sync
    /// still exits 3 and the one after their removal exits 0.
    @Test func everyFileOfTheAcceptanceTreeIsAccountedFor() async throws {
        let fleet = try await HostileFleet()
        let tree = try HostileBase("accept")
        let ordinary = (0..<50).map { "notes/\($0).md" }
        for path in ordinary { try tree.write(path, "# \(path)\n") }
        try tree.write("poison.md", "# poison\n")
        try tree.link("notes-link", "notes")  // not followed, not a failure
        // Point 1: a file whose own path passes 2,048 bytes (its directory does not).
        let longDirectory = (0..<10).map { "a\($0)" + String(repeating: "x", count: 196) }.joined(separator: "/")
        let longFile = longDirectory + "/" + String(repeating: "f", count: 100) + ".md"
        try tree.write(longFile, "# long\n")
        // Point 2: a file past PATH_MAX, under directories made one by one.
        let deepComponents = (0..<25).map { "e\($0)" + String(repeating: "d", count: 197 - String($0).count) }
        var fd = open(tree.root, O_DIRECTORY | O_RDONLY)
        for component in deepComponents {
            mkdirat(fd, component, 0o755)
            let next = openat(fd, component, O_DIRECTORY | O_RDONLY)
            close(fd)
            fd = next
        }
        let file = openat(fd, "deep.md", O_CREAT | O_WRONLY, 0o644)
        #expect(file >= 0 && write(file, "# deep\n", 7) == 7)
        close(file)
        close(fd)
        let empty = try HostileBase("accept-empty")
        _ = try await fleet.sync(empty.root, sourceID: "empty")  // applies the schema
        try await fleet.withConnection { c in
            _ = try await c.executeScript("""
                CREATE FUNCTION \(fleet.schema.name).poison() RETURNS trigger LANGUAGE plpgsql AS $$
                  BEGIN IF NEW.path = 'poison.md' THEN RAISE EXCEPTION 'poison file %', NEW.path; END IF; RETURN NEW; END $$;
                CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON \(fleet.schema.documents)
                  FOR EACH ROW EXECUTE FUNCTION \(fleet.schema.name).poison();
                """)
        }

        let first = try await fleet.sync(tree.root, sourceID: "accept")
        #expect(first.exitCode == 3 && first.imported == 50 && first.failed == 3, "\(first.json())")
        let deepDirectory = deepComponents.prefix(11).joined(separator: "/")  // the first past 2,048 bytes
        let expected = ["poison.md": "rejected", LongPath.key(longFile): "path_too_long",
                        LongPath.key(deepDirectory): "path_too_long"]
        #expect(try await fleet.failures("accept").mapValues(\.reason) == expected)
        #expect(try await fleet.documents().paths == Set(ordinary.map { Array($0.utf8) }))

        try tree.remove("poison.md")
        let second = try await fleet.sync(tree.root, sourceID: "accept")
        #expect(second.exitCode == 3 && second.imported == 0 && second.failed == 2, "\(second.json())")
        #expect(try await fleet.failures("accept").mapValues(\.reason) == expected.filter { $0.key != "poison.md" })

        try tree.remove("a0" + String(repeating: "x", count: 196))
        _ = try Command.run("/bin/rm", ["-rf", tree.root + "/" + deepComponents[0]])  // deeper than FileManager goes
        let third = try await fleet.sync(tree.root, sourceID: "accept")
        #expect(third.exitCode == 0 && third.status == .completed, "\(third.json())")
        #expect(try await fleet.failures("accept").isEmpty)
        #expect(try await fleet.documents().paths == Set(ordinary.map { Array($0.utf8) }))
    }

    /// A read that may pass is tried the run's `max_attempts` times before it is quarantined.
    @Test func unreadableFilesAreTriedMaxAttemptsTimes() throws {
        let tree = try HostileBase("attempts")
        // A root that is gone (an unmounted volume) is `unreadable`, not a deletion; root reads
        // everything else.
        for attempts in [1, 3] {
            let run = RunContext(id: 0, sourceID: "s", root: tree.root + "/unmounted", state: .running, maxFileBytes: 100,
                                 maxAttempts: attempts)
            guard case .failed(let reason, _, let tried) = BatchImporter.readFile("a.md", run: run) else {
                Issue.record("a.md under a missing root was not a failure")
                return
            }
            #expect(reason == "unreadable" && tried == attempts)
        }
        try tree.write("big.txt", String(repeating: "b", count: 101))
        let run = RunContext(id: 0, sourceID: "s", root: tree.root, state: .running, maxFileBytes: 100, maxAttempts: 3)
        guard case .failed(let reason, _, let tried) = BatchImporter.readFile("big.txt", run: run) else {
            Issue.record("big.txt was not a failure")
            return
        }
        #expect(reason == "too_large" && tried == 1)  // deterministic: not retried within the run
    }
}
