// The one file of FleetCrypto: SHA-256 from OpenSSL's libcrypto, so that no domain code imports a C module.
internal import COpenSSL

/// Lowercase hex SHA-256 digests, as stored in `filefleet.documents.sha256`, and HMAC-SHA-256.
public enum SHA256 {
    /// Fetched once: `EVP_sha256()` would make OpenSSL 3 look the algorithm up on every call.
    /// An `EVP_MD` is immutable and safe to share between threads.
    nonisolated(unsafe) private static let algorithm: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)

    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        var digest = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &digest) { compute(bytes, into: $0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        return withUnsafeBytes(of: &digest) { hexString($0) }
    }

    /// The 32-byte digest of `bytes`.
    public static func digest(_ bytes: [UInt8]) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { out, count in
            bytes.withUnsafeBytes { compute($0, into: out.baseAddress!) }
            count = 32
        }
    }

    /// HMAC-SHA-256 (RFC 2104) of `message` under `key`: H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ message)).
    public static func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var block = key.count > 64 ? digest(key) : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        let inner = digest(block.map { $0 ^ 0x36 } + message)
        return digest(block.map { $0 ^ 0x5C } + inner)
    }

    /// Lowercase hex of the first `bytes` bytes of `hmac(key:_:)`.
    public static func hmacHex(key: [UInt8], _ message: [UInt8], bytes: Int = 32) -> String {
        hmac(key: key, message).prefix(bytes).withUnsafeBytes { hexString($0) }
    }

    private static func compute(_ input: UnsafeRawBufferPointer, into md: UnsafeMutablePointer<UInt8>) {
        // A zero-length buffer may have no base address; OpenSSL needs a valid pointer anyway.
        var empty: UInt8 = 0
        let ok = withUnsafePointer(to: &empty) { fallback in
            EVP_Digest(input.baseAddress ?? UnsafeRawPointer(fallback), input.count, md, nil, algorithm ?? EVP_sha256(), nil)
        }
        precondition(ok == 1, "EVP_Digest(SHA-256) failed")
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { hex($0) }
    }

    private static func hexString(_ raw: UnsafeRawBufferPointer) -> String {
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: raw.count * 2) { out in
            digits.withUTF8Buffer { table in
                for (i, byte) in raw.enumerated() {
                    out[2 * i] = table[Int(byte >> 4)]
                    out[2 * i + 1] = table[Int(byte & 0x0f)]
                }
            }
            return raw.count * 2
        }
    }
}
