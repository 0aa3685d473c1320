import FileFleet
import Foundation
import Testing
import TestSupport

@Suite struct TestSupportTests {
    @Test func sharedServersAcceptConnections() async throws {
        let environment = try await TestEnvironment.shared()
        let port = Int(environment.kafkaBrokers.split(separator: ":").last!)!
        #expect(Command.isListening(port: port))
        let schema = try await environment.makeSchema()
        let output = try await runBlocking {
            try Command.run("/usr/bin/env", ["psql", schema.url, "-qAt", "-c", "SELECT current_schema()"])
        }
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == schema.name)
    }

    @Test func uniqueNamesDiffer() {
        let names = (0..<100).map { _ in TestEnvironment.uniqueName("t") }
        #expect(Set(names).count == 100)
    }
}
