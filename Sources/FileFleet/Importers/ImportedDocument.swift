public import struct Foundation.Date

/// One file, ready to be written as a row of `filefleet.documents` (SPEC §5).
public struct ImportedDocument: Sendable, Equatable {
    public var path: String
    /// Lowercase hex SHA-256 of the file's bytes as read (BOM included).
    public var sha256: String
    public var size: Int
    public var mtime: Date
    public var kind: DocumentKind
    public var title: String?
    /// A JSON object's text, for a `jsonb` bind; nil when there is no frontmatter or it could not be used.
    public var frontmatterJSON: String?
    /// One line saying why the frontmatter is not in `frontmatterJSON`; nil when nothing went wrong.
    public var frontmatterError: String?
    /// Markdown: the text after the frontmatter; text: the whole text; binary: nil. Never contains NUL.
    public var body: String?

    public init(path: String, sha256: String, size: Int, mtime: Date, kind: DocumentKind, title: String?,
                frontmatterJSON: String?, frontmatterError: String?, body: String?) {
        self.path = path
        self.sha256 = sha256
        self.size = size
        self.mtime = mtime
        self.kind = kind
        self.title = title
        self.frontmatterJSON = frontmatterJSON
        self.frontmatterError = frontmatterError
        self.body = body
    }
}
