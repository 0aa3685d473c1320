import Foundation

enum Timestamps {
    /// The earliest time PostgreSQL's timestamptz holds (4714-11-24 BC), in microseconds since the epoch.
    static let earliest: Int64 = -210_866_803_200_000_000
    /// The latest kept (in the year 287,000-odd). PostgreSQL holds later times, but the planner
    /// makes timestamps as `micros * interval '1 microsecond'`, a float8 product that must stay
    /// within Int64 (9·10^18 is exact as a double).
    static let latest: Int64 = 9_000_000_000_000_000_000

    /// Whole microseconds of a file time, truncated as PostgreSQL, `stat(1)` and Python do (a
    /// Double would round, and lose exactness past 2^53 ns). Walker, planner and reader all use it.
    /// A time outside what PostgreSQL can hold (a file system can store any 64-bit second) is
    /// clamped to its range: the same file always gives the same value, and it can be stored.
    static func micros(_ time: timespec) -> Int64 {
        let (seconds, overflow) = Int64(time.tv_sec).multipliedReportingOverflow(by: 1_000_000)
        if overflow { return time.tv_sec < 0 ? earliest : latest }
        let (micros, carried) = seconds.addingReportingOverflow(Int64(time.tv_nsec) / 1_000)
        return carried ? latest : min(max(micros, earliest), latest)
    }
}
