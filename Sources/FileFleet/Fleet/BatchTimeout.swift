import ServiceLifecycle
import FleetKafka
import FleetPostgres
import Foundation
import Synchronization

/// A batch did not finish within `--batch-timeout`; it was rolled back (SPEC §6.12).
struct BatchTimeout: Error, CustomStringConvertible {
    let seconds: Double
    let paths: [String]

    var description: String {
        let shown = paths.prefix(10).joined(separator: ", ")
        return "the batch did not finish within --batch-timeout \(Int(seconds)) s; rolled back; \(paths.count) paths in flight: \(shown)"
            + (paths.count > 10 ? ", …" : "")
    }
}
