import FileFleet
import Foundation
import Testing
import TestSupport

/// The embedded stack's database is its owner's alone (docs/security.md): another local user can
/// neither connect (over TCP or the socket, with or without the URL `stack env` prints) nor read
/// the password file. Before, the cluster trusted every connection on loopback and on its socket,
/// and each of these connections got in as the superuser.
@Suite(.enabled(if: Command.isRoot, "creates a second local user"))
struct OwnerOnlyStackTests {
    static let other = "filefleet-other"

    /// Runs `argv` as the other user; its exit status and output.
    func asOther(_ argv: [String]) -> (ok: Bool, output: String) {
        do {
            return (true, try Command.run("/usr/sbin/runuser", ["-u", Self.other, "--"] + argv))
        } catch let error as CommandError {
            return (false, error.output)
        } catch {
            return (false, "\(error)")
        }
    }

    @Test func anotherLocalUserCannotQueryTheEmbeddedDatabase() async throws {
        let state = "/tmp/" + TestEnvironment.uniqueName("owner-only")
        let stack = EmbeddedStack(stateDirectory: state)
        let endpoints = try await runBlocking { try stack.up(keep: true) }
        defer { try? stack.down() }
        if (try? Command.run("/usr/bin/id", ["-u", Self.other])) == nil {
            try Command.run("/usr/sbin/useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", Self.other])
        }
        let cluster = LocalPostgres(directory: (try? FileManager.default.destinationOfSymbolicLink(atPath: state + "/postgres"))
                                    ?? state + "/postgres")
        let port = try #require(cluster.port)

        // The owner gets in with the URL alone.
        let mine = try Command.run("/usr/bin/psql", [endpoints.postgresURL, "-Atc", "SELECT current_user"])
        #expect(mine.trimmingCharacters(in: .whitespacesAndNewlines) == "postgres")

        let attempts = [
            ("the URL stack env prints", [endpoints.postgresURL]),
            ("TCP as the superuser, no password", ["postgresql://postgres@127.0.0.1:\(port)/postgres?sslmode=disable"]),
            ("the unix socket", ["host=\(cluster.socketDirectory) port=\(port) user=postgres dbname=postgres"]),
        ]
        for (what, target) in attempts {
            let (ok, output) = asOther(["/usr/bin/psql"] + target + ["-w", "-Atc", "SELECT 1"])
            #expect(!ok, "\(what): another user got in: \(output)")
        }
        let (read, output) = asOther(["/bin/cat", cluster.passwordFile])
        #expect(!read, "another user read the password file: \(output)")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: cluster.passwordFile)[.posixPermissions] as? Int)
        #expect(mode & 0o077 == 0, "password file mode \(String(mode, radix: 8))")
    }
}
