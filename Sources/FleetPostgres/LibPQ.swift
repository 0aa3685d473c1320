internal import CLibPQ

/// The libpq this process loaded.
public enum LibPQ {
    /// `PQlibVersion()`: e.g. 150018 for 15.18.
    public static var version: Int { Int(PQlibVersion()) }
}
