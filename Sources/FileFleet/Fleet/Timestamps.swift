import Foundation

enum Timestamps {
    /// Microseconds of a file's mtime as FileReader reports it. The planner goes through the same
    /// Date conversion, so both sides agree to the microsecond.
    static func micros(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }

    static func micros(_ time: timespec) -> Int64 {
        micros(Date(timeIntervalSince1970: Double(time.tv_sec) + Double(time.tv_nsec) / 1e9))
    }
}

extension SourceFile {
    var mtimeMicros: Int64 { Timestamps.micros(mtime) }
}
