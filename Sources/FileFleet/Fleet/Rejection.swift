import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

/// Errors in which the database rejects a file's data, not the connection or the schema: a data
/// exception (class 22: a value out of range, an invalid byte sequence), an integrity constraint
/// (23: a CHECK, a foreign key), a program limit (54: an index row too large), or a trigger's
/// RAISE (P0). Others (permissions, a missing table, timeouts 57014/55P03) would reject every
/// file alike, so they fail the batch as before instead of quarantining the tree.
enum Rejection {
    static let reason = "rejected"
    static let classes: Set<String> = ["22", "23", "54", "P0"]

    static func isRejection(_ error: PostgresError) -> Bool {
        !error.isRetryable && classes.contains(error.code.errorClass)
    }
}
