import FileFleet
import FleetPostgres
import Foundation
import Testing
import TestSupport

/// TLS to PostgreSQL through libpq, and secrets that never reach the output (docs/security.md).
@Suite struct SecurityTests {
    /// A test CA, a server certificate for `localhost`, a client certificate for `tlsuser`, and a
    /// second CA that signed none of them.
    struct Certificates {
        let directory: String
        var ca: String { directory + "/ca.crt" }
        var otherCA: String { directory + "/other-ca.crt" }
        var serverCertificate: String { directory + "/server.crt" }
        var serverKey: String { directory + "/server.key" }
        var clientCertificate: String { directory + "/client.crt" }
        var clientKey: String { directory + "/client.key" }

        init() throws {
            directory = "/tmp/" + TestEnvironment.uniqueName("tls")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            chmod(directory, 0o755)
            func openssl(_ arguments: [String]) throws { try Command.run("/usr/bin/openssl", arguments) }
            try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/ca.key", "-out", ca,
                         "-days", "2", "-subj", "/CN=FileFleet test CA"])
            try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/other-ca.key",
                         "-out", otherCA, "-days", "2", "-subj", "/CN=Someone else's CA"])
            try "subjectAltName=DNS:localhost\n".write(toFile: directory + "/san.ext", atomically: false, encoding: .utf8)
            for (name, subject, ext) in [("server", "/CN=localhost", ["-extfile", directory + "/san.ext"]),
                                         ("client", "/CN=tlsuser", [])] {
                try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(directory)/\(name).key",
                             "-out", "\(directory)/\(name).csr", "-subj", subject])
                try openssl(["x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", ca, "-CAkey", directory + "/ca.key",
                             "-CAcreateserial", "-out", "\(directory)/\(name).crt", "-days", "2"] + ext)
            }
            chmod(serverKey, 0o600)
            chmod(clientKey, 0o600)
            // The server reads its key as `postgres` when the tests run as root.
            if Command.isRoot { try Command.run("/bin/chown", ["postgres:postgres", serverKey, serverCertificate]) }
        }
    }

    /// Runs the CLI to completion: exit status and everything it wrote.
    static func cli(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let binary = try FleetCLI.binary()
        return try await runBlocking {
            do {
                return (0, try Command.run(binary, arguments))
            } catch let error as CommandError {
                return (error.status, error.output)
            }
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func postgresOverTLSVerifiesTheServerAndAcceptsAClientCertificate() async throws {
        let certificates = try Certificates()
        let server = try await PostgresServer.start(
            settings: ["ssl": "on", "ssl_cert_file": "'\(certificates.serverCertificate)'",
                       "ssl_key_file": "'\(certificates.serverKey)'", "ssl_ca_file": "'\(certificates.ca)'"],
            hba: ["hostssl all tlsuser 127.0.0.1/32 cert", "hostssl all tlsuser ::1/128 cert"])
        defer { Task { try? await server.stop() } }
        try await FleetDB.query(server.url) { c in
            try await c.execute("CREATE ROLE tlsuser LOGIN")
            try await c.execute("CREATE DATABASE tlsdb OWNER tlsuser")
        }
        let passfile = try #require(server.url.components(separatedBy: "passfile=").last)
        func url(host: String, user: String = "postgres", database: String = "postgres", _ tls: String) -> String {
            "postgresql://\(user)@\(host):\(server.port)/\(database)?passfile=\(passfile)&\(tls)"
        }
        let verified = "sslmode=verify-full&sslrootcert=\(certificates.ca)"

        // verify-full against the right CA and host name: in, over TLS.
        let good = try await Self.cli(["migrate", "--postgres", url(host: "localhost", verified)])
        #expect(good.status == 0, "\(good.output)")
        let overTLS = try await FleetDB.query(url(host: "localhost", verified)) { c in
            try await c.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0].decode(Bool.self, 0)
        }
        #expect(overTLS)

        // A host name the certificate does not name, and a CA that did not sign it: one line, exit 2, at once.
        let failures = [
            ("wrong host name", url(host: "127.0.0.1", verified), "does not match host name"),
            ("untrusted CA", url(host: "localhost", "sslmode=verify-full&sslrootcert=\(certificates.otherCA)"),
             "certificate verify failed"),
            ("no client certificate where one is required",
             url(host: "localhost", user: "tlsuser", database: "tlsdb", verified), "certificate"),
        ]
        for (what, target, words) in failures {
            let started = ContinuousClock.now
            let failed = try await Self.cli(["migrate", "--postgres", target])
            let lines = failed.output.split(separator: "\n")
            #expect(failed.status == 2, "\(what): \(failed.output)")
            #expect(lines.count == 1 && lines[0].hasPrefix("filefleet: Postgres:") && lines[0].contains(words),
                    "\(what): \(failed.output)")
            #expect(ContinuousClock.now - started < .seconds(10), "\(what): retried instead of failing")
        }

        // Client-certificate authentication: no password at all.
        let client = url(host: "localhost", user: "tlsuser", database: "tlsdb",
                         verified + "&sslcert=\(certificates.clientCertificate)&sslkey=\(certificates.clientKey)")
        let byCertificate = try await Self.cli(["migrate", "--postgres", client])
        #expect(byCertificate.status == 0, "\(byCertificate.output)")
        let user = try await FleetDB.query(client) { c in try await c.query("SELECT current_user")[0].decode(String.self, 0) }
        #expect(user == "tlsuser")
    }

    /// Passwords given in the Postgres URL and in Kafka SASL options (flag and file) appear in no
    /// log line, summary, page or error message of runs that work and runs that fail.
    @Test(.timeLimit(.minutes(3)))
    func secretsAppearInNoOutput() async throws {
        let fleet = try await Fleet()
        defer { Task { await fleet.shutdown() } }
        let tree = try FleetTree.make(files: 30)
        defer { tree.remove() }
        let password = try fleet.postgres.password
        let wrongPassword = "wrong-\(UUID().uuidString)"
        let saslFlag = "sasl-flag-\(UUID().uuidString)"
        let saslFile = "sasl-file-\(UUID().uuidString)"
        let secrets = [password, wrongPassword, saslFlag, saslFile]
        let withPassword = "postgresql://postgres:\(password)@127.0.0.1:\(fleet.postgres.port)/postgres?sslmode=disable"
        let withWrongPassword = "postgresql://postgres:\(wrongPassword)@127.0.0.1:\(fleet.postgres.port)/postgres?sslmode=disable"
        let optionFile = fleet.directory + "/kafka.properties"
        try "# SASL for the broker\nsasl.password=\(saslFile)\n".write(toFile: optionFile, atomically: false, encoding: .utf8)
        let common = ["--kafka", fleet.brokers, "--topic", fleet.topic, "--group", fleet.group]
        let sasl = ["--kafka-option", "security.protocol=SASL_PLAINTEXT", "--kafka-option", "sasl.mechanism=SCRAM-SHA-256",
                    "--kafka-option", "sasl.username=filefleet", "--kafka-option-file", optionFile]
        var outputs: [(String, String)] = []

        // A run that works, with the password in the URL.
        let good = try await Self.cli(["sync", tree.root, "--json", "--postgres", withPassword] + common)
        #expect(good.status == 0, "\(good.output)")
        outputs.append(("sync", good.output))
        // A worker serving its pages, with the password in the URL and SASL options.
        let port = try Command.freeLoopbackPort()
        let worker = try FleetProcess(name: "worker", arguments: ["worker", "--postgres", withPassword, "--http", "127.0.0.1:\(port)",
                                                                   "--kafka-option", "sasl.password=\(saslFlag)"] + common + sasl,
                                      directory: fleet.directory)
        for path in ["/", "/metrics", "/healthz", "/readyz"] {
            var page = ""
            _ = await fleetEventually(timeout: .seconds(20)) {
                page = (try? await Self.get("http://127.0.0.1:\(port)\(path)")) ?? ""
                return !page.isEmpty
            }
            #expect(!page.isEmpty, "no answer on \(path)")
            outputs.append(("worker \(path)", page))
        }
        try await Task.sleep(for: .seconds(3))  // its SASL handshakes fail meanwhile
        worker.send(SIGTERM)
        _ = await worker.waitForExit(timeout: .seconds(30))
        worker.killAndReap()
        outputs.append(("worker", worker.stdout + worker.stderr))
        // Runs that fail: a wrong password, and a broker that will not take the SASL options.
        let refused = try await Self.cli(["sync", tree.root, "--json", "--postgres", withWrongPassword] + common)
        #expect(refused.status == 2, "\(refused.output)")
        outputs.append(("sync with a wrong password", refused.output))
        let status = try await Self.cli(["status", "--postgres", withWrongPassword])
        #expect(status.status == 2, "\(status.output)")
        outputs.append(("status with a wrong password", status.output))
        let bad = try await Self.cli(["sync", tree.root, "--source-id", "through-kafka", "--direct-max", "0", "--json",
                                      "--postgres", withPassword, "--kafka-option", "sasl.password=\(saslFlag)"]
                                     + common + sasl + ["--kafka-option", "sasl.mechanism=NO-SUCH-MECHANISM"])
        #expect(bad.status == 2, "\(bad.output)")
        outputs.append(("sync with a bad Kafka option", bad.output))

        for (what, text) in outputs {
            for secret in secrets {
                #expect(!text.contains(secret), "\(what) shows a secret:\n\(text.suffix(3000))")
            }
        }
    }

    /// A secret given in a file or a Kafka option is scrubbed wherever it would show, even where
    /// nothing marks it as one (no `password=`, no URL).
    @Test func registeredSecretsAreScrubbedFromAnyText() {
        let secret = "reg-\(UUID().uuidString)"
        #expect(Redact.scrub("broker said: bad token \(secret).").contains(secret))
        Redact.register(secret)
        #expect(Redact.scrub("broker said: bad token \(secret).") == "broker said: bad token ********.")
        Redact.register("abc")  // too short to be worth blanking out everywhere
        #expect(Redact.scrub("abc") == "abc")
    }

    static func get(_ url: String) async throws -> String {
        try await runBlocking { try Command.run("/usr/bin/env", ["curl", "-s", "-m", "10", url]) }
    }
}
