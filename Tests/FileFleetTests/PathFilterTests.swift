import Testing
@testable import FileFleet

@Suite struct PathFilterTests {
    /// The byte scan agrees with the definition: some `/`-separated component starts with `.`.
    @Test func hiddenMeansAComponentStartsWithADot() {
        let pieces = ["a", ".", "..", ".git", "b.c", "/", "//", "é", ".é", "x."]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let path = (0..<Int.random(in: 1...6, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            let byDefinition = RelativePath.components(path[...]).contains { $0.hasPrefix(".") }
            #expect(PathFilter.isHidden(path) == byDefinition, "\(path)")
        }
        #expect(PathFilter.isHidden(".obsidian/app.json") && PathFilter.isHidden("notes/.draft.md"))
        #expect(!PathFilter.isHidden("notes/v1.2/a.md"))
    }
}
