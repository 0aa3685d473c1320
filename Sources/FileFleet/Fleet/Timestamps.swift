import Foundation

enum Timestamps {
    /// timestamptz text for microseconds since the epoch, exact (no floating point on the way).
    static func text(micros: Int64) -> String {
        var seconds = time_t(micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000)
        let fraction = micros - Int64(seconds) * 1_000_000
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), fraction)
    }
}

extension Timestamps {
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
