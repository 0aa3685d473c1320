import FleetCrypto
import Foundation
import PropertyBased
import Testing
@testable import FileFleet

private let when = Date(timeIntervalSince1970: 1_700_000_000)

private func load(_ text: String, path: String = "notes/Note.md") -> ImportedDocument {
    Importer.importFile(bytes: Array(text.utf8), path: path, mtime: when)
}

/// The frontmatter JSON text of a markdown file made of `yaml` between delimiters.
private func frontmatter(_ yaml: String) -> String? {
    load("---\n\(yaml)\n---\nbody\n").frontmatterJSON
}

@Suite struct ImporterTests {
    @Test func sha256IsLowercaseHexOfTheBytes() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let doc = load("hello\n", path: "a.txt")
        #expect(doc.sha256 == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
        #expect(doc.size == 6)
        #expect(doc.mtime == when)
        #expect(doc.path == "a.txt")
    }

    @Test func kindsFollowExtensionAndUTF8() {
        #expect(load("# x", path: "a.md").kind == .markdown)
        #expect(load("# x", path: "dir/B.MARKDOWN").kind == .markdown)
        #expect(load("# x", path: "c.Mdx").kind == .markdown)
        #expect(load("# x", path: "c.txt").kind == .text)
        #expect(load("# x", path: "README").kind == .text)
        #expect(load("# x", path: ".md").kind == .text)  // a dot file named `.md` has no extension
        let latin1: [UInt8] = [0x63, 0x61, 0x66, 0xe9, 0x0a]  // "café" in Latin-1
        let md = Importer.importFile(bytes: latin1, path: "x/Latin.md", mtime: when)
        #expect(md.kind == .binary)
        #expect(md.body == nil)
        #expect(md.frontmatterJSON == nil && md.frontmatterError == nil)
        #expect(md.title == "Latin")
        #expect(md.size == 5)
        let nul = Importer.importFile(bytes: Array("a\u{0}b".utf8), path: "n.txt", mtime: when)
        #expect(nul.kind == .binary)
        #expect(nul.body == nil)
        let data = Importer.importFile(data: Data([0xff, 0xfe, 0x41, 0x00]), path: "utf16.txt", mtime: when)
        #expect(data.kind == .binary)
    }

    @Test func emptyFiles() {
        let md = load("", path: "Empty.md")
        #expect(md.kind == .markdown)
        #expect(md.body == "")
        #expect(md.title == "Empty")
        #expect(md.frontmatterJSON == nil && md.frontmatterError == nil)
        #expect(md.sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(md.size == 0)
        let txt = load("", path: "e.txt")
        #expect(txt.kind == .text)
        #expect(txt.body == "")
        #expect(txt.title == "e")
    }

    @Test func scalarsBecomeJSON() {
        let yaml = """
            title: Hello
            count: 42
            negative: -7
            ratio: 1.5
            exp: 1e3
            draft: false
            yes_word: yes
            none: null
            tilde: ~
            empty:
            big: 123456789012345678901234567890
            hex: 0x1F
            octal: 0o17
            old_octal: 017
            underscored: 1_000
            sexagesimal: 1:30
            quoted: "42"
            single: 'true'
            explicit: !!str 2024-01-05
            forced: !!int "7"
            custom: !thing value
            """
        #expect(frontmatter(yaml) == #"""
            {"title":"Hello","count":42,"negative":-7,"ratio":1.5,"exp":1000.0,"draft":false,"yes_word":true,\#
            "none":null,"tilde":null,"empty":null,"big":123456789012345678901234567890,"hex":31,"octal":15,\#
            "old_octal":15,"underscored":1000,"sexagesimal":90,"quoted":"42","single":"true",\#
            "explicit":"2024-01-05","forced":7,"custom":"value"}
            """#)
    }

    @Test func datesBecomeISO8601Strings() {
        let yaml = """
            day: 2024-01-05
            at: 2001-12-14t21:59:43.10-05:00
            spaced: 2001-12-14 21:59:43.10 -5
            utc: 2024-03-01T00:00:00Z
            naive: 2024-03-01 23:30:00
            east: 2024-01-01T01:00:00+02:00
            notADate: 2024-13-01
            """
        #expect(frontmatter(yaml) == #"""
            {"day":"2024-01-05","at":"2001-12-15T02:59:43.1Z","spaced":"2001-12-15T02:59:43.1Z",\#
            "utc":"2024-03-01T00:00:00Z","naive":"2024-03-01T23:30:00Z","east":"2023-12-31T23:00:00Z",\#
            "notADate":"2024-13-01"}
            """#)
    }

    @Test func nonFiniteFloatsBecomeStrings() {
        #expect(frontmatter("a: .nan\nb: -.inf\nc: .Inf\nd: +.INF\ne: 1e400") ==
            #"{"a":"NaN","b":"-Infinity","c":"Infinity","d":"Infinity","e":"Infinity"}"#)
    }

    @Test func nonStringKeysKeepTheirText() {
        let yaml = """
            1: one
            true: yes
            ~: nothing
            2024-01-05: day
            1.5: float
            ? [a, b]
            : list
            ? {k: v}
            : map
            """
        #expect(frontmatter(yaml) == #"""
            {"1":"one","true":true,"~":"nothing","2024-01-05":"day","1.5":"float","[\"a\",\"b\"]":"list",\#
            "{\"k\":\"v\"}":"map"}
            """#)
    }

    @Test func nestedMappingsAndLists() {
        let yaml = """
            tags: [a, b, 3]
            nested:
              x:
                y: [1, {z: null}]
              list:
                - one
                - k: v
                  n: 2
              emptyList: []
              emptyMap: {}
            """
        #expect(frontmatter(yaml) == #"""
            {"tags":["a","b",3],"nested":{"x":{"y":[1,{"z":null}]},"list":["one",{"k":"v","n":2}],\#
            "emptyList":[],"emptyMap":{}}}
            """#)
    }

    @Test func aliasesAndMergeKeys() {
        let yaml = """
            base: &b {x: 1, y: 2}
            derived:
              <<: *b
              y: 3
            copy: *b
            """
        #expect(frontmatter(yaml) == #"{"base":{"x":1,"y":2},"derived":{"y":3,"x":1},"copy":{"x":1,"y":2}}"#)
    }

    @Test func stringsAreEscaped() {
        let yaml = #"""
            s: "line\nnext \"q\" back\\slash\ttab \u0001 é 😀"
            nul: "a\0b"
            block: |
              two
              lines
            """#
        #expect(frontmatter(yaml) == #"""
            {"s":"line\nnext \"q\" back\\slash\ttab \u0001 é 😀","nul":"a\#u{FFFD}b","block":"two\nlines\n"}
            """#)
    }

    @Test func titleFromFrontmatterCoercedToText() {
        #expect(load("---\ntitle: Plain\n---\n# Heading\n").title == "Plain")
        #expect(load("---\ntitle: 42\n---\n# Heading\n").title == "42")
        #expect(load("---\ntitle: 2.5\n---\n").title == "2.5")
        #expect(load("---\ntitle: true\n---\n").title == "true")
        #expect(load("---\ntitle: 2024-01-05\n---\n").title == "2024-01-05")
        #expect(load("---\ntitle: 2024-01-05 10:00:00\n---\n").title == "2024-01-05T10:00:00Z")
        #expect(load("---\ntitle: [Part, 2]\n---\n").title == "Part, 2")
        #expect(load("---\ntitle: {a: 1}\n---\n").title == #"{"a":1}"#)
        #expect(load("---\ntitle: \"  padded \"\n---\n").title == "padded")
        // null, empty and blank fall through to the heading, then to the file name.
        #expect(load("---\ntitle: null\n---\n# From Heading\n").title == "From Heading")
        #expect(load("---\ntitle: \"\"\n---\n# From Heading\n").title == "From Heading")
        #expect(load("---\ntitle:\n---\ntext\n", path: "dir/My File.v2.md").title == "My File.v2")
        #expect(load("---\ntitle: []\n---\n# H\n").title == "H")
        // Only the key `title`, exactly.
        #expect(load("---\nTitle: Other\n---\n# H\n").title == "H")
    }

    @Test func titleFromFirstLevelOneHeading() {
        let text = """
            Intro with #hashtag
            ## Second level
            #NoSpace
                # indented code
            ```
            # in a fence
            ```
            ~~~~ python
            # in a tilde fence
            ~~~~
               #   The Title   ##
            # Later
            """
        #expect(load(text).title == "The Title")
        #expect(load("#\n# \n# Real\n").title == "Real")
        #expect(load("# Win\r\nx\r\n").title == "Win")
        #expect(load("# C# ###\n").title == "C#")
        #expect(load("# *Styled* `code`").title == "*Styled* `code`")
        #expect(load("no heading\n```\n# fenced, never closed\n", path: "a/Stem.md").title == "Stem")
        // Headings count in markdown only: text and binary files are titled by their file name.
        #expect(load("# Heading\n", path: "doc/read me.txt").title == "read me")
        #expect(load("plain", path: "archive.tar.gz").title == "archive.tar")
        #expect(load("plain", path: ".bashrc").title == ".bashrc")
    }

    @Test func invalidYAMLKeepsTheBody() {
        let doc = load("---\ntitle: ok\nbad: [unclosed\n---\n# Body Title\ntext\n")
        #expect(doc.kind == .markdown)
        #expect(doc.frontmatterJSON == nil)
        #expect(doc.frontmatterError?.hasPrefix("line ") == true)
        #expect(doc.frontmatterError?.contains("\n") == false)
        #expect(doc.body == "# Body Title\ntext\n")
        #expect(doc.title == "Body Title")

        let tabs = load("---\na: b: c\n---\nx")
        #expect(tabs.frontmatterError == "line 2, column 5: mapping values are not allowed in this context")
        #expect(tabs.body == "x")

        let dup = load("---\na: 1\na: 2\n---\n")
        #expect(dup.frontmatterError?.contains("duplicate key a") == true)
        #expect(dup.frontmatterJSON == nil)
    }

    @Test func unterminatedFrontmatterKeepsTheWholeText() {
        let text = "---\ntitle: never closed\n# Heading\nmore\n"
        let doc = load(text)
        #expect(doc.frontmatterJSON == nil)
        #expect(doc.frontmatterError == "unterminated frontmatter")
        #expect(doc.body == text)
        #expect(doc.title == "Heading")
        #expect(load("---").frontmatterError == "unterminated frontmatter")
    }

    @Test func frontmatterThatIsNotAMapping() {
        let list = load("---\n- a\n- b\n---\nbody")
        #expect(list.frontmatterJSON == nil)
        #expect(list.frontmatterError == "frontmatter is not a mapping (found a list)")
        #expect(list.body == "body")
        #expect(load("---\njust text\n---\n").frontmatterError == "frontmatter is not a mapping (found a scalar)")
    }

    @Test func emptyFrontmatterIsAnEmptyObject() {
        for text in ["---\n---\nbody", "---\n\n---\nbody", "---\n# only a comment\n---\nbody", "---\n~\n---\nbody"] {
            let doc = load(text)
            #expect(doc.frontmatterJSON == "{}", "\(text)")
            #expect(doc.frontmatterError == nil)
            #expect(doc.body?.hasSuffix("body") == true)
        }
    }

    @Test func delimiters() {
        let dots = load("---\na: 1\n...\nbody\n")
        #expect(dots.frontmatterJSON == #"{"a":1}"#)
        #expect(dots.body == "body\n")
        let spaces = load("--- \t\na: 1\n---  \nbody")
        #expect(spaces.frontmatterJSON == #"{"a":1}"#)
        #expect(spaces.body == "body")
        let atEnd = load("---\na: 1\n---")
        #expect(atEnd.frontmatterJSON == #"{"a":1}"#)
        #expect(atEnd.body == "")
        // Not a frontmatter opening: `----`, `--- x`, or a blank line first.
        for text in ["----\na: 1\n---\n", "--- x\na: 1\n---\n", "\n---\na: 1\n---\n"] {
            let doc = load(text)
            #expect(doc.frontmatterJSON == nil && doc.frontmatterError == nil)
            #expect(doc.body == text)
        }
        // Text files never have frontmatter.
        let txt = load("---\na: 1\n---\n", path: "a.txt")
        #expect(txt.frontmatterJSON == nil && txt.body == "---\na: 1\n---\n")
    }

    @Test func crlfFrontmatterAndBodyKeptAsIs() {
        let doc = load("---\r\ntitle: Win\r\ntags: [a]\r\n---\r\n# H\r\nline\r\n")
        #expect(doc.frontmatterJSON == #"{"title":"Win","tags":["a"]}"#)
        #expect(doc.frontmatterError == nil)
        #expect(doc.body == "# H\r\nline\r\n")
        #expect(doc.title == "Win")
    }

    @Test func byteOrderMarkIsStrippedFromTextButHashed() {
        let bytes: [UInt8] = [0xef, 0xbb, 0xbf] + Array("---\ntitle: B\n---\nx".utf8)
        let doc = Importer.importFile(bytes: bytes, path: "bom.md", mtime: when)
        #expect(doc.frontmatterJSON == #"{"title":"B"}"#)
        #expect(doc.body == "x")
        #expect(doc.size == bytes.count)
        #expect(doc.sha256 == SHA256.hex(bytes))
        let txt = Importer.importFile(bytes: [0xef, 0xbb, 0xbf, 0x68, 0x69], path: "bom.txt", mtime: when)
        #expect(txt.kind == .text)
        #expect(txt.body == "hi")
    }

    @Test func hugeSingleLineFiles() {
        let line = [UInt8](repeating: UInt8(ascii: "a"), count: 20 << 20)
        let md = Importer.importFile(bytes: line, path: "big.md", mtime: when)
        #expect(md.kind == .markdown)
        #expect(md.body?.utf8.count == 20 << 20)
        #expect(md.title == "big")
        let txt = Importer.importFile(bytes: line, path: "big.log", mtime: when)
        #expect(txt.kind == .text)
        #expect(txt.body?.utf8.count == 20 << 20)
        // A single enormous frontmatter line.
        let fm = Array("---\ntitle: ".utf8) + line[..<(4 << 20)] + Array("\n---\nbody".utf8)
        let doc = Importer.importFile(bytes: fm, path: "long.md", mtime: when)
        #expect(doc.title?.utf8.count == 4 << 20)
        #expect(doc.body == "body")
    }

    @Test func hostileYAMLIsRefusedNotFatal() {
        // Nesting beyond the bound: refused before Yams' recursive composer sees it.
        let deep = "---\nx: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
            + "\n---\nbody"
        let doc = load(deep)
        #expect(doc.frontmatterError == "frontmatter nests too deeply")
        #expect(doc.body == "body")
        // Moderate nesting is fine.
        #expect(frontmatter("x: " + String(repeating: "[", count: 50) + String(repeating: "]", count: 50))
            == #"{"x":"# + String(repeating: "[", count: 50) + String(repeating: "]", count: 50) + "}")
        // "Billion laughs": aliases that expand exponentially.
        var bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            let refs = Array(repeating: "*\(level == 1 ? "a" : "l\(level - 1)")", count: 10).joined(separator: ", ")
            bomb += "l\(level): &l\(level) [\(refs)]\n"
        }
        let bombed = load("---\n\(bomb)---\n")
        #expect(bombed.frontmatterJSON == nil)
        #expect(bombed.frontmatterError?.hasPrefix("frontmatter expands beyond") == true)
    }

    @Test func randomBytesNeverCrash() async {
        let paths = ["a.md", "b.txt", "c", "d.MDX", "e/f.markdown"]
        await propertyCheck(count: 400, input: Gen.uint8(in: 0...255).array(of: 0...400), Gen.int(in: 0...4)) { bytes, p in
            let doc = Importer.importFile(bytes: bytes, path: paths[p], mtime: when)
            checkInvariants(doc, bytes: bytes)
        }
    }

    @Test func randomFrontmatterAlwaysGivesAnObjectOrAnError() async {
        let pieces = ["a", ": ", "\n", "  ", "- ", "[", "]", "{", "}", ",", "&x ", "*x", "\"", "'", "#", "? ",
                      "<<: ", "!!int ", "1", "2024-01-05", ".nan", "~", "\t", "|", ">", "\\", "é", "\r\n", "---"]
        await propertyCheck(count: 600, input: Gen.int(in: 0...(pieces.count - 1)).array(of: 0...40)) { picks in
            let text = "---\n" + picks.map { pieces[$0] }.joined() + "\n---\nbody"
            let bytes = Array(text.utf8)
            let doc = Importer.importFile(bytes: bytes, path: "fuzz.md", mtime: when)
            checkInvariants(doc, bytes: bytes)
            #expect(doc.body?.hasSuffix("body") == true)
        }
    }
}

private func checkInvariants(_ doc: ImportedDocument, bytes: [UInt8]) {
    #expect(doc.size == bytes.count)
    #expect(doc.sha256 == SHA256.hex(bytes))
    #expect(doc.sha256.utf8.count == 64)
    switch doc.kind {
    case .binary:
        #expect(doc.body == nil && doc.frontmatterJSON == nil)
    case .text, .markdown:
        #expect(doc.body != nil)
        #expect(doc.body?.utf8.contains(0) == false)
        #expect(doc.title?.utf8.contains(0) == false)
    }
    #expect(doc.title?.isEmpty == false)
    if let json = doc.frontmatterJSON {
        #expect(doc.kind == .markdown)
        #expect(doc.frontmatterError == nil)
        let parsed = try? JSONSerialization.jsonObject(with: Data(json.utf8))
        #expect(parsed is [String: Any], "not a JSON object: \(json)")
        #expect(!json.contains("\\u0000"))
    }
    if let error = doc.frontmatterError {
        #expect(!error.contains("\n"))
        #expect(error.count <= 241)
    }
}
