import FleetCrypto
public import Foundation

/// Turns a file's bytes into a document row: kind, hash, frontmatter, title, body (SPEC §5).
/// Pure and synchronous; cheap enough to run tens of thousands of times a second per core.
public enum Importer {
    public static func importFile(bytes: [UInt8], path: String, mtime: Date) -> ImportedDocument {
        bytes.withUnsafeBufferPointer { importFile(buffer: $0, path: path, mtime: mtime) }
    }

    public static func importFile(data: Data, path: String, mtime: Date) -> ImportedDocument {
        data.withUnsafeBytes { importFile(buffer: $0.bindMemory(to: UInt8.self), path: path, mtime: mtime) }
    }

    static func importFile(buffer: UnsafeBufferPointer<UInt8>, path: String, mtime: Date) -> ImportedDocument {
        var document = ImportedDocument(
            path: path, sha256: SHA256.hex(UnsafeRawBufferPointer(buffer)), size: buffer.count, mtime: mtime,
            kind: .binary, title: String(RelativePath.stem(path)), frontmatterJSON: nil, frontmatterError: nil,
            body: nil)

        // NUL is valid UTF-8 but PostgreSQL text cannot hold it: such a file is binary.
        if let base = buffer.baseAddress, memchr(base, 0, buffer.count) != nil { return document }
        var text = buffer
        if text.count >= 3, text[0] == 0xef, text[1] == 0xbb, text[2] == 0xbf {
            text = UnsafeBufferPointer(rebasing: text[3...])
        }
        guard let whole = String(validating: text, as: UTF8.self) else { return document }

        guard DocumentKind.isMarkdownPath(path) else {
            document.kind = .text
            document.body = whole
            return document
        }
        document.kind = .markdown
        var bodyStart = 0
        var frontmatterTitle: String?
        switch Frontmatter.split(text) {
        case .none:
            break
        case .unterminated:
            document.frontmatterError = "unterminated frontmatter"
        case let .block(yaml, start):
            bodyStart = start
            switch Frontmatter.parse(UnsafeBufferPointer(rebasing: text[yaml])) {
            case .success(let members):
                document.frontmatterJSON = JSONValue.object(members).jsonText
                if let title = members.first(where: { $0.0 == "title" }) {
                    frontmatterTitle = Title.coerce(title.1)
                }
            case .failure(let problem):
                document.frontmatterError = problem.message
            }
        }
        document.body = bodyStart == 0 ? whole : String(decoding: text[bodyStart...], as: UTF8.self)
        if let title = frontmatterTitle ?? Title.firstHeading(UnsafeBufferPointer(rebasing: text[bodyStart...])) {
            document.title = title
        }
        return document
    }
}
