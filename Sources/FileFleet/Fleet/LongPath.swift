import FleetCrypto
import FleetPostgres
import Foundation

/// A relative path longer than `maxBytes` cannot be a key of `planned_paths`, `checkpoints`,
/// `documents` or `failures` (a btree entry holds at most 2704 bytes), so the coordinator
/// quarantines it at planning (`path_too_long`) under a stand-in key that fits: the first 200
/// bytes, `…`, and the SHA-256 of the whole path, unique per path and found again by each walk.
enum LongPath {
    static let maxBytes = 2048
    static let reason = "path_too_long"
    static let message = "path_too_long: the relative path is longer than \(maxBytes) bytes (shown as its first 200 bytes, …, "
        + "and the SHA-256 of the whole path); shorten it to import it"

    /// `paths` that fit, and the keys of the others: those on disk, and those gone.
    static func setAside(_ paths: [String], root: String) -> (fits: [String], onDisk: [String], gone: [String]) {
        var fits: [String] = [], onDisk: [String] = [], gone: [String] = []
        for path in paths {
            guard path.utf8.count > maxBytes else { fits.append(path); continue }
            var info = stat()
            let missing = lstat(root + "/" + path, &info) != 0 && (errno == ENOENT || errno == ENOTDIR)
            if missing { gone.append(key(path)) } else { onDisk.append(key(path)) }
        }
        return (fits, onDisk, gone)
    }

    static func key(_ path: String) -> String {
        let bytes = Array(path.utf8)
        var end = min(200, bytes.count)
        while end > 0, end < bytes.count, bytes[end] & 0xC0 == 0x80 { end -= 1 }  // a UTF-8 boundary
        return String(decoding: bytes[..<end], as: UTF8.self) + "…" + SHA256.hex(bytes)
    }
}
