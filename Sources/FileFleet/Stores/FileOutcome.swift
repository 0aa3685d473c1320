import FleetPostgres
import Foundation

/// What a worker found for one planned path, before the transaction.
enum FileOutcome: Sendable {
    case document(ImportedDocument, mtimeMicros: Int64)
    case vanished
    case failed(reason: String, message: String, attempts: Int)
}
