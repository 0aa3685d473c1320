import Foundation

enum Timestamps {
    /// Whole microseconds of a file time, truncated as PostgreSQL, `stat(1)` and Python do (a
    /// Double would round, and lose exactness past 2^53 ns). Walker, planner and reader all use it.
    static func micros(_ time: timespec) -> Int64 {
        Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1_000
    }
}
