/// How a source is listed (SPEC §6.3): a plain directory walk, or git's view of a work tree.
/// Decided at every sync (`.git` at the root means git); stored as its raw value.
public enum SourceMode: String, Sendable, Codable {
    case directory
    case git
}
