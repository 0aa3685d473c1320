import FleetPostgres
import Foundation

/// What a worker found for one planned path, before the transaction.
enum FileOutcome: Sendable {
    /// `row`: the document's row of `documents`, encoded where the file was read (`BatchWriter.row`).
    /// Only the row is kept of the document (a batch in flight holds each body once).
    case document(sha256: String, size: Int, row: PostgresBinaryRow)
    case vanished
    case failed(reason: String, message: String, attempts: Int)
}
