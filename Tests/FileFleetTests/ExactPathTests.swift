@testable import FileFleet
import Foundation
import Testing

/// Paths are compared byte for byte: canonically equivalent spellings are two files.
@Suite struct ExactPathTests {
    @Test func canonicallyEquivalentSpellingsAreTwoPaths() {
        let composed = "notes/caf\u{E9}.md", decomposed = "notes/cafe\u{301}.md"
        #expect(composed == decomposed)  // String equality is canonical equivalence
        #expect(ExactPath(composed) != ExactPath(decomposed))
        #expect(Set([ExactPath(composed), ExactPath(decomposed)]).count == 2)
        #expect([ExactPath(composed): 1, ExactPath(decomposed): 2][ExactPath(decomposed)] == 2)
    }

    @Test func equalBytesAreOnePathHoweverTheStringWasMade() {
        let paths = ["", "a", "d1/note.md", String(repeating: "long/", count: 40) + "f.md", "sm\u{F6}rg\u{E5}s/\u{1F600}.md"]
        for path in paths {
            let rebuilt = String(decoding: Array(path.utf8), as: UTF8.self)
            let bridged = NSString(string: path) as String
            for other in [rebuilt, bridged, path + ""] {
                #expect(ExactPath(path) == ExactPath(other))
                #expect(ExactPath(path).hashValue == ExactPath(other).hashValue, "\(path)")
            }
            #expect(ExactPath(path + "x") != ExactPath(path))
        }
        // Same length, one byte apart.
        #expect(ExactPath("d1/a.md") != ExactPath("d1/b.md"))
    }
}
