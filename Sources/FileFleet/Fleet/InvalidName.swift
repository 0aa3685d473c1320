/// A path whose bytes are not valid UTF-8 cannot be a `text` column (SPEC §5), so it is quarantined
/// (SPEC §6.8) under a lossless escaped spelling: valid UTF-8 is kept, each byte of an invalid
/// sequence becomes `\xNN` (lowercase hex) and a backslash becomes `\\`. `unescaped` gives the
/// bytes back, so an operator can find (and rename) the file: `printf '%b'` understands the form.
public enum InvalidName {
    /// `filefleet.failures.reason` of such a path.
    public static let reason = "invalid_name"
    public static let message = "invalid_name: the name is not valid UTF-8 (shown with \\xNN escapes); rename it to import it"

    public static func escaped(_ bytes: [UInt8]) -> String {
        var out = ""
        var i = 0
        while i < bytes.count {
            let length = sequenceLength(bytes[i])
            if length > 0, i + length <= bytes.count,
               let scalar = String(validating: bytes[i..<i + length], as: UTF8.self) {
                out += scalar == "\\" ? "\\\\" : scalar
                i += length
            } else {
                out += "\\x" + hex(bytes[i])
                i += 1
            }
        }
        return out
    }

    /// The bytes `escaped` was made from; nil when `text` is not such a spelling.
    public static func unescaped(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < utf8.count {
            guard utf8[i] == UInt8(ascii: "\\") else {
                out.append(utf8[i])
                i += 1
                continue
            }
            guard i + 1 < utf8.count else { return nil }
            if utf8[i + 1] == UInt8(ascii: "\\") {
                out.append(utf8[i + 1])
                i += 2
            } else if utf8[i + 1] == UInt8(ascii: "x"), i + 3 < utf8.count,
                      let byte = UInt8(String(decoding: utf8[i + 2...i + 3], as: UTF8.self), radix: 16) {
                out.append(byte)
                i += 4
            } else {
                return nil
            }
        }
        return out
    }

    private static func sequenceLength(_ lead: UInt8) -> Int {
        switch lead {
        case 0x00...0x7f: 1
        case 0xc2...0xdf: 2
        case 0xe0...0xef: 3
        case 0xf0...0xf4: 4
        default: 0
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
    }
}
