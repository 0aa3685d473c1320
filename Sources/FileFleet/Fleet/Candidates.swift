import FleetPostgres
import Foundation

/// The paths of an incremental plan in first-seen order, compared byte for byte, each with what
/// git said about it.
struct Candidates {
    struct Facts: OptionSet {
        let rawValue: UInt8
        /// Changed between the bookmark and the pin.
        static let committed = Facts(rawValue: 1 << 0)
        /// The pin's tree holds it.
        static let inPin = Facts(rawValue: 1 << 1)
        /// `git status` lists it.
        static let shown = Facts(rawValue: 1 << 2)
        /// `git status` shows it untracked and not ignored.
        static let untracked = Facts(rawValue: 1 << 3)
        /// `git status` says the index holds it.
        static let indexed = Facts(rawValue: 1 << 4)
    }

    private(set) var paths: [String] = []
    private(set) var facts: [Facts] = []
    private var index: [ExactPath: Int] = [:]

    mutating func note(_ path: String, _ new: Facts) {
        let key = ExactPath(path)
        if let i = index[key] {
            facts[i].formUnion(new)
        } else {
            index[key] = paths.count
            paths.append(path)
            facts.append(new)
        }
    }
}
