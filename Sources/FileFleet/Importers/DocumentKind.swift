
/// `filefleet.documents.kind`.
public enum DocumentKind: String, Sendable, Equatable, CaseIterable {
    case markdown
    case text
    case binary

    /// `.md`, `.markdown`, `.mdx`, in any case.
    public static func isMarkdownPath(_ path: String) -> Bool {
        switch RelativePath.lowercasedExtension(path) {
        case "md", "markdown", "mdx": true
        default: false
        }
    }
}
