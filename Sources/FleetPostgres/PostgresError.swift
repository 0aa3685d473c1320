import Foundation
import Synchronization

/// An error reported by the server, by libpq, or by this layer, always with a SQLSTATE.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public var code: Code
    public var message: String
    public var detail: String?
    public var hint: String?
    /// The SQL text with `$n` placeholders; bound values are never kept.
    public var statement: String?

    public init(code: Code, message: String, detail: String? = nil, hint: String? = nil, statement: String? = nil) {
        self.code = code
        self.message = message
        self.detail = detail
        self.hint = hint
        self.statement = statement
    }

    /// Transient per SPEC §6.9: worth retrying on a new attempt (and possibly a new connection).
    public var isRetryable: Bool {
        if code == .queryCanceled || code == .lockNotAvailable { return false }
        if code.errorClass == "08" { return true }
        if Self.retryableCodes.contains(code) { return true }
        let text = message.lowercased()
        return Self.tooManyClientsFamily.contains { text.contains($0) }
    }

    static let retryableCodes: Set<Code> = [
        .tooManyConnections, .adminShutdown, .crashShutdown, .cannotConnectNow,
        .serializationFailure, .deadlockDetected,
    ]

    /// What poolers and servers say when they are out of slots, in lower case.
    static let tooManyClientsFamily = [
        "emaxconnsession", "too many clients", "remaining connection slots are reserved",
        "no more connections allowed",
    ]

    public var description: String {
        var text = "PostgresError \(code.rawValue): \(message)"
        if let detail { text += " (detail: \(detail))" }
        if let hint { text += " (hint: \(hint))" }
        if let statement { text += " [statement: \(statement)]" }
        return text
    }
}

extension PostgresError {
    /// A SQLSTATE.
    public struct Code: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public var description: String { rawValue }
        /// The first two characters, e.g. "08" for connection exceptions.
        public var errorClass: String { String(rawValue.prefix(2)) }

        public static let successfulCompletion: Code = "00000"
        public static let connectionException: Code = "08000"
        public static let sqlclientUnableToEstablishSqlconnection: Code = "08001"
        public static let connectionDoesNotExist: Code = "08003"
        public static let connectionFailure: Code = "08006"
        public static let protocolViolation: Code = "08P01"
        public static let invalidParameterValue: Code = "22023"
        public static let invalidTextRepresentation: Code = "22P02"
        public static let uniqueViolation: Code = "23505"
        public static let foreignKeyViolation: Code = "23503"
        public static let notNullViolation: Code = "23502"
        public static let inFailedSqlTransaction: Code = "25P02"
        public static let invalidAuthorizationSpecification: Code = "28000"
        public static let invalidPassword: Code = "28P01"
        public static let invalidCatalogName: Code = "3D000"
        public static let serializationFailure: Code = "40001"
        public static let deadlockDetected: Code = "40P01"
        public static let syntaxError: Code = "42601"
        public static let undefinedTable: Code = "42P01"
        public static let undefinedColumn: Code = "42703"
        public static let duplicateTable: Code = "42P07"
        public static let tooManyConnections: Code = "53300"
        public static let lockNotAvailable: Code = "55P03"
        public static let queryCanceled: Code = "57014"
        public static let adminShutdown: Code = "57P01"
        public static let crashShutdown: Code = "57P02"
        public static let cannotConnectNow: Code = "57P03"
        public static let internalError: Code = "XX000"
    }
}

extension PostgresError {
    /// A server that refuses who we are or a TLS setup that cannot work: retrying changes nothing,
    /// the user must fix the URL, the password or the certificates (SPEC §4: exit 2).
    public var isConfigurationError: Bool {
        code.errorClass == "28" || code == .invalidCatalogName || code == .invalidParameterValue
    }

    /// libpq's words for a TLS connection it will not trust or cannot set up.
    static let tlsTrustFamily = [
        "certificate verify failed", "does not match host name", "root certificate file", "could not read root certificate",
        "could not load private key", "certificate present, but not private key", "could not read certificate",
        "server does not support ssl", "certificate file", "private key file", "requires a valid client certificate",
        "certificate authentication failed",
    ]

    /// Classifies a libpq connect-time failure, which carries no SQLSTATE.
    static func connectFailure(_ rawMessage: String, password: String?) -> PostgresError {
        let message = Redact.scrub(rawMessage.trimmingTrailingNewlines, password: password)
        let text = message.lowercased()
        let code: Code
        if tooManyClientsFamily.contains(where: { text.contains($0) }) {
            code = .tooManyConnections
        } else if text.contains("the database system is starting up") || text.contains("the database system is shutting down")
                    || text.contains("the database system is in recovery mode") || text.contains("not yet accepting connections") {
            code = .cannotConnectNow
        } else if text.contains("password authentication failed") || text.contains("no password supplied") {
            code = .invalidPassword
        } else if text.contains("database") && text.contains("does not exist") {
            code = .invalidCatalogName
        } else if text.contains("role") && text.contains("does not exist") || text.contains("no pg_hba.conf entry")
                    || Self.tlsTrustFamily.contains(where: { text.contains($0) }) {
            code = .invalidAuthorizationSpecification
        } else if text.contains("invalid connection option") || text.contains("invalid uri") || text.contains("missing \"=\"")
                    || text.contains("invalid integer value") || text.contains("invalid percent-encoded") {
            code = .invalidParameterValue
        } else {
            code = .sqlclientUnableToEstablishSqlconnection
        }
        return PostgresError(code: code, message: message)
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var s = Substring(self)
        while let last = s.last, last.isNewline || last == " " { s.removeLast() }
        return String(s)
    }
}

/// Keeps passwords out of anything shown.
public enum Redact {
    /// Secrets this process was given other than in a URL (a password file, a Kafka SASL
    /// password): `scrub` removes them wherever they appear.
    private static let known = Mutex<[String]>([])

    /// Adds a secret for `scrub` to remove (values shorter than 4 characters are not worth it:
    /// they would blank out ordinary words).
    public static func register(_ secret: String) {
        guard secret.count >= 4 else { return }
        known.withLock { if !$0.contains(secret) { $0.append(secret) } }
    }

    public static func scrub(_ text: String, password: String? = nil) -> String {
        var out = text
        if let password, !password.isEmpty {
            out = out.replacingAll(password, with: "********")
        }
        for secret in known.withLock({ $0 }) { out = out.replacingAll(secret, with: "********") }
        out = scrubKeyValue(out)
        out = scrubURIUserInfo(out)
        return out
    }

    /// `password=secret` or `password='se cret'` → `password=********`.
    private static func scrubKeyValue(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let range = rest.range(of: "password=", options: []) {
            result += rest[..<range.upperBound]
            rest = rest[range.upperBound...]
            if rest.first == "'" {
                rest = rest.dropFirst()
                if let end = rest.firstIndex(of: "'") { rest = rest[rest.index(after: end)...] } else { rest = "" }
            } else {
                let end = rest.firstIndex(where: { $0 == " " || $0 == "&" || $0 == "\"" || $0.isNewline }) ?? rest.endIndex
                rest = rest[end...]
            }
            result += "********"
        }
        return result + rest
    }

    /// `postgresql://user:secret@host` → `postgresql://user:********@host`.
    private static func scrubURIUserInfo(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let scheme = rest.range(of: "://") {
            result += rest[..<scheme.upperBound]
            rest = rest[scheme.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == " " || $0 == "\"" || $0 == "?" }) ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                result += authority[...colon] + "********"
                rest = rest[at...]
            }
        }
        return result + rest
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
