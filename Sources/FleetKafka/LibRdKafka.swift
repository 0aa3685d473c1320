internal import CRdKafka

/// The librdkafka this process loaded, and the oldest one FileFleet works with.
public enum LibRdKafka {
    /// 2.8.0: Debian bookworm's 2.0.2 cannot talk to the Tansu broker (SPEC §9.2).
    public static let minimumVersion = 0x0208_0000

    /// `rd_kafka_version()`: 0xMMmmrrpp.
    public static var version: Int { Int(rd_kafka_version()) }

    public static var versionString: String { String(cString: rd_kafka_version_str()) }

    public static var isSupported: Bool { version >= minimumVersion }
}
