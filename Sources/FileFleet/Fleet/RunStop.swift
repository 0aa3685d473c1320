import FleetKafka
import FleetPostgres

/// Why a sync aborted (SPEC §4): a stable code for scripts and the error's class and message
/// for people, without secrets.
struct RunStop: Sendable {
    let reason: String
    let error: String

    /// The database refused who we are, or its TLS cannot be trusted: exit 2 (SPEC §4).
    public static let storeConfiguration = "store_configuration"

    init(_ error: any Error) {
        switch error {
        case is LeaseLost: reason = "lease_lost"
        case let error as PostgresError where error.isRetryable: reason = "store_unavailable"
        case is PostgresPoolError: reason = "store_unavailable"
        case is NoWorkers: reason = NoWorkers.reason
        case let error as PostgresError where error.isConfigurationError: reason = Self.storeConfiguration
        case is PostgresError: reason = "store_error"
        case is KafkaError: reason = "broker_error"
        default: reason = "internal_error"
        }
        self.error = Redact.scrub("\(error)")
    }
}
