import Yams

/// Markdown YAML frontmatter: finding the block, and turning it into a JSON object.
enum Frontmatter {
    /// Where the block is in a text (byte offsets, BOM already removed).
    enum Split: Equatable {
        /// The text does not start with a `---` line.
        case none
        /// An opening `---` line and no closing `---`/`...` line.
        case unterminated
        /// `yaml` is the text between the delimiter lines; the body starts at `bodyStart`.
        case block(yaml: Range<Int>, bodyStart: Int)
    }

    /// The block starts with the first line being `---` and ends at the next line that is `---` or `...`.
    /// Delimiter lines may end in `\r\n` and carry trailing spaces or tabs; nothing else.
    static func split(_ text: UnsafeBufferPointer<UInt8>) -> Split {
        guard let afterOpening = delimiterLine(text, at: 0, allowDots: false) else { return .none }
        var lineStart = afterOpening
        while lineStart < text.count {
            if let next = delimiterLine(text, at: lineStart, allowDots: true) {
                return .block(yaml: afterOpening..<lineStart, bodyStart: next)
            }
            lineStart = endOfLine(text, from: lineStart) + 1
        }
        return .unterminated
    }

    /// Index of the first `\n` at or after `i`, or `text.count`.
    static func endOfLine(_ text: UnsafeBufferPointer<UInt8>, from i: Int) -> Int {
        var j = i
        while j < text.count, text[j] != 0x0a { j += 1 }
        return j
    }

    /// When a delimiter line starts at `i`: the index just past its line break (or the end of the text).
    private static func delimiterLine(_ text: UnsafeBufferPointer<UInt8>, at i: Int, allowDots: Bool) -> Int? {
        guard i + 3 <= text.count else { return nil }
        let c = text[i]
        guard c == UInt8(ascii: "-") || (allowDots && c == UInt8(ascii: ".")), text[i + 1] == c, text[i + 2] == c
        else { return nil }
        var j = i + 3
        while j < text.count, text[j] == 0x20 || text[j] == 0x09 { j += 1 }
        if j == text.count { return j }
        if text[j] == 0x0d { j += 1 }
        if j == text.count { return j }
        return text[j] == 0x0a ? j + 1 : nil
    }

    // MARK: - YAML to JSON

    /// Upper bound on how deep Yams' recursive composer (and our conversion) may nest before we refuse:
    /// far beyond any real frontmatter, far below what a worker thread's stack survives.
    static let maxNestingBound = 1000

    /// The frontmatter as JSON object members, or a one-line reason why there is none. The common shape is
    /// read by `simpleMembers`, the rest by Yams; `fastPath: false` is Yams alone (tests compare the two).
    static func parse(_ yaml: UnsafeBufferPointer<UInt8>, fastPath: Bool = true) -> Result<[(String, JSONValue)], Problem> {
        guard nestingBound(yaml) <= maxNestingBound else {
            return .failure(Problem("frontmatter nests too deeply"))
        }
        if fastPath, let members = simpleMembers(yaml) { return .success(members) }
        let text = String(decoding: yaml, as: UTF8.self)
        let root: Node?
        do {
            let parser = try Parser(yaml: text, resolver: .basic, constructor: .default, encoding: .utf8)
            root = try parser.singleRoot()
        } catch let error as YamlError {
            return .failure(Problem(message(error)))
        } catch {
            return .failure(Problem(oneLine(String(describing: error))))
        }
        guard let root else { return .success([]) }
        var converter = Converter(budget: 4 * yaml.count + 10_000)
        do throws(Converter.Overflow) {
            switch root {
            case .mapping:
                guard case .object(let members) = try converter.value(root) else { return .success([]) }
                return .success(members)
            case .scalar:
                // `---\n~\n---` is as empty as `---\n---`.
                if try converter.value(root) == .null { return .success([]) }
                return .failure(Problem("frontmatter is not a mapping (found a scalar)"))
            case .sequence:
                return .failure(Problem("frontmatter is not a mapping (found a list)"))
            case .alias:
                return .failure(Problem("frontmatter is not a mapping (found an alias)"))
            }
        } catch {
            return .failure(Problem("frontmatter expands beyond \(converter.limit) units (aliases?)"))
        }
    }

    struct Problem: Error, Equatable {
        var message: String
        init(_ message: String) { self.message = message }
    }

    /// An upper bound on the nesting depth of any YAML text, from cheap counts: block collections nest
    /// only by indentation and the `-`, `?`, `:` indicators of a line (each followed by a blank or
    /// the line's end: `12:00`, `a-b` and `---` nest nothing), flow collections only by `[` and `{`
    /// (each may open an implicit single-pair mapping too, hence twice). Closing brackets count only
    /// in a text without quotes, where nothing can hide one from this count but a comment, which is
    /// skipped; with quotes, every opening bracket counts.
    static func nestingBound(_ yaml: UnsafeBufferPointer<UInt8>) -> Int {
        let quoted = yaml.contains(UInt8(ascii: "\"")) || yaml.contains(UInt8(ascii: "'"))
        func isBlank(_ i: Int) -> Bool { i >= yaml.count || yaml[i] == 0x20 || yaml[i] == 0x09 || yaml[i] == 0x0a || yaml[i] == 0x0d }
        var bound = 0
        var depth = 0, opened = 0
        var i = 0
        while i < yaml.count {
            var indent = 0
            while i < yaml.count, yaml[i] == 0x20 || yaml[i] == 0x09 { indent += 1; i += 1 }
            var indicators = 0
            var deepest = depth
            var afterBlank = true
            line: while i < yaml.count, yaml[i] != 0x0a {
                switch yaml[i] {
                case UInt8(ascii: "-"), UInt8(ascii: "?"), UInt8(ascii: ":"):
                    if isBlank(i + 1) { indicators += 1 }
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    depth += 1
                    opened += 1
                    deepest = max(deepest, depth)
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    if !quoted { depth = max(0, depth - 1) }
                case UInt8(ascii: "#") where afterBlank && !quoted:
                    while i < yaml.count, yaml[i] != 0x0a { i += 1 }
                    break line
                default: break
                }
                afterBlank = isBlank(i)
                i += 1
            }
            bound = max(bound, 2 * (indent + indicators + 2) + 2 * (quoted ? opened : deepest) + 1)
            i += 1
        }
        return bound
    }

    /// `line 3, column 7: mapping values are not allowed in this context`, with file line numbers
    /// (the opening `---` is line 1).
    static func message(_ error: YamlError) -> String {
        let lineOffset = 1
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            var text = "line \(mark.line + lineOffset), column \(mark.column): \(problem)"
            if let context {
                text += " (\(context.text) at line \(context.mark.line + lineOffset))"
            }
            return oneLine(text)
        case let .reader(problem, _, _, _):
            return oneLine("invalid input: \(problem)")
        case let .duplicatedKeysInMapping(duplicates, context):
            return oneLine("line \(context.mark.line + lineOffset): duplicate key \(duplicates.joined(separator: ", "))")
        default:
            return oneLine(String(describing: error))
        }
    }

    static func oneLine(_ text: String, limit: Int = 240) -> String {
        var out = ""
        for ch in text.unicodeScalars {
            if out.unicodeScalars.count >= limit { out += "…"; break }
            out.unicodeScalars.append(ch.value < 0x20 || ch.value == 0x7f ? " " : ch)
        }
        return out
    }

    // MARK: - conversion

    struct Converter {
        struct Overflow: Error {}
        /// Work allowed: one unit per node plus one per byte of scalar text. Without aliases a document
        /// costs about twice its size; an alias "billion laughs" runs out instead of eating memory.
        let limit: Int
        var used = 0

        init(budget: Int) { limit = budget }

        mutating func spend(_ units: Int) throws(Overflow) {
            used += units
            if used > limit { throw Overflow() }
        }

        mutating func value(_ node: Node) throws(Overflow) -> JSONValue {
            try spend(1)
            switch node {
            case .scalar(let scalar):
                try spend(scalar.string.utf8.count)
                return Self.scalarValue(scalar)
            case .sequence(let sequence):
                var items: [JSONValue] = []
                items.reserveCapacity(sequence.count)
                for item in sequence { items.append(try value(item)) }
                return .array(items)
            case .mapping(let mapping):
                var members = Members()
                var merges: [Node] = []
                for (key, item) in mapping {
                    // Yams has already resolved key tags (to `str`, with the basic resolver) to look for duplicates.
                    if let k = key.scalar, k.style == .plain, k.string == "<<",
                       [Self.mergeTag, "tag:yaml.org,2002:str", ""].contains(k.tag.rawValue) {
                        merges.append(item)
                        continue
                    }
                    members.set(try keyText(key), try value(item))
                }
                // YAML merge keys: explicit keys win, then earlier merged mappings over later ones.
                for merge in merges {
                    let sources: [Node] = if case .sequence(let s) = merge { Array(s) } else { [merge] }
                    for source in sources {
                        guard case .object(let merged) = try value(source) else {
                            members.set("<<", try value(source))
                            continue
                        }
                        for (k, v) in merged where !members.contains(k) { members.set(k, v) }
                    }
                }
                return .object(members.pairs)
            case .alias(let alias):
                return .string("*" + alias.anchor.rawValue)
            }
        }

        /// Scalar keys keep their text as written (`1`, `true`, `~`, `2024-01-05`); a list or mapping used as
        /// a key becomes its JSON text.
        mutating func keyText(_ key: Node) throws(Overflow) -> String {
            if case .scalar(let scalar) = key {
                try spend(1 + scalar.string.utf8.count)
                return scalar.string
            }
            return try value(key).jsonText
        }

        static let mergeTag = "tag:yaml.org,2002:merge"

        static func scalarValue(_ scalar: Node.Scalar) -> JSONValue {
            let text = scalar.string
            switch scalar.tag.rawValue {
            case "":
                return scalar.style == .plain ? YAMLScalar.resolvePlain(text) : .string(text)
            case "tag:yaml.org,2002:null":
                return .null
            case "tag:yaml.org,2002:bool":
                return YAMLScalar.bool(text).map(JSONValue.bool) ?? .string(text)
            case "tag:yaml.org,2002:int":
                return YAMLScalar.explicitInt(text) ?? .string(text)
            case "tag:yaml.org,2002:float":
                return YAMLScalar.explicitFloat(text) ?? .string(text)
            case "tag:yaml.org,2002:timestamp":
                return YAMLScalar.explicitTimestamp(text).map(JSONValue.string) ?? .string(text)
            default:
                // `!!str`, `!`, `!!binary`, application tags: the text as written.
                return .string(text)
            }
        }
    }

    /// Object members with unique keys; a repeated key (`1` and `"1"`) keeps its first place, last value.
    struct Members {
        var pairs: [(String, JSONValue)] = []
        var index: [String: Int] = [:]

        func contains(_ key: String) -> Bool {
            if pairs.count <= 8 { return pairs.contains { $0.0 == key } }
            return index[key] != nil
        }

        mutating func set(_ key: String, _ value: JSONValue) {
            if pairs.count <= 8 {
                if let i = pairs.firstIndex(where: { $0.0 == key }) { pairs[i].1 = value; return }
            } else if let i = index[key] {
                pairs[i].1 = value
                return
            }
            pairs.append((key, value))
            if pairs.count == 9 {
                for (i, pair) in pairs.enumerated() { index[pair.0] = i }
            } else if pairs.count > 9 {
                index[key] = pairs.count - 1
            }
        }
    }
}
