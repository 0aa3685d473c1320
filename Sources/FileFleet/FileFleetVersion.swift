/// FileFleet's version, printed by `filefleet --version`.
public enum FileFleetVersion {
    public static let string = "0.1.0"
}
