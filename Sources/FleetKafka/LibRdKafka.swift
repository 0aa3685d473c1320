internal import CRdKafka

/// The librdkafka this process loaded, and the oldest one FileFleet works with.
public enum LibRdKafka {
    /// 2.10.1: Debian bookworm's 2.0.2 cannot talk to the Tansu broker (SPEC §9.2), and releases
    /// before 2.10 crash (a use-after-free in the metadata cache) when a broker restart gives a
    /// topic a new id. 2.14.2 still crashed on a restarted Tansu's Fetch v12 leader hints until
    /// patched (patches/); a version number cannot tell whether it is.
    public static let minimumVersion = 0x020A_0100

    /// `rd_kafka_version()`: 0xMMmmrrpp.
    public static var version: Int { Int(rd_kafka_version()) }

    public static var versionString: String { String(cString: rd_kafka_version_str()) }

    public static var isSupported: Bool { version >= minimumVersion }
}
