import FleetPostgres
import Foundation

/// What a worker found for one planned path, before the transaction.
enum FileOutcome: Sendable {
    /// `row`: the document's row of `documents`, encoded where the file was read (`BatchWriter.row`).
    case document(ImportedDocument, mtimeMicros: Int64, row: PostgresBinaryRow)
    case vanished
    case failed(reason: String, message: String, attempts: Int)
}
