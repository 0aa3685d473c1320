import FleetKafka
import FleetMemory
import FleetPostgres
import Foundation

/// Process-wide set-up of a `filefleet` command, before it talks to any server.
public enum FleetProcess {
    /// Why this process cannot run, if the loaded librdkafka is too old (SPEC §9.2).
    public static var unsupportedLibraryMessage: String? {
        guard !LibRdKafka.isSupported else { return nil }
        return "librdkafka \(LibRdKafka.versionString) is loaded, but FileFleet needs 2.10.1 or newer: "
            + "run scripts/setup (it builds 2.14.2 into /usr/local) or point LD_LIBRARY_PATH at a librdkafka ≥ 2.10.1"
    }

    /// Names the process's database sessions (`application_name`) and logs every retry.
    /// Also caps glibc's malloc arenas at one per core (unless `MALLOC_ARENA_MAX` says otherwise).
    public static func configure(command: String, pid: Int32) {
        PostgresConnection.applicationName = "filefleet \(command) \(pid)"
        RetryLogging.install()
        if ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil {
            // By default glibc gives each thread that allocates an arena of its own, up to 8 per
            // core, and keeps what each one held: the Dispatch threads that read files, the
            // cooperative pool and librdkafka's threads. A sync of 1,000,000 files peaked at
            // 132 MiB that way and at 87 MiB with two arenas, no slower.
            MallocArenas.cap(max(2, System.coreCount))
        }
    }

    /// The password of every connection whose URL has none (`--postgres-password-file`).
    public static func setPostgresPassword(_ password: String) {
        PostgresConnection.defaultPassword = password
    }

    /// The one line for an error the user must fix in their configuration (a Postgres connection
    /// string, credentials, TLS files), or nil for any other error.
    public static func configurationMessage(_ error: any Error) -> String? {
        guard let error = error as? PostgresError, error.isConfigurationError else { return nil }
        return "Postgres: \(error.message)"
    }

    /// Keeps `secret` (a password given in an option) out of every message and log line.
    public static func registerSecret(_ secret: String) {
        Redact.register(secret)
    }

    /// `text` without connection-string passwords and registered secrets.
    public static func redacted(_ text: String) -> String {
        Redact.scrub(text)
    }
}
