import FleetPostgres
import Foundation

/// Unique paths in first-seen order, compared byte for byte.
struct OrderedPaths {
    private(set) var paths: [String] = []
    private var seen = Set<ExactPath>()

    mutating func insert(_ path: String) {
        if seen.insert(ExactPath(path)).inserted { paths.append(path) }
    }
}
