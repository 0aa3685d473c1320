import FleetCrypto
import FleetPostgres
import Foundation

/// A directory of the source that exists but cannot be listed (permission denied): what is under
/// it cannot be seen, so it is quarantined as one entry, under its own relative path, until a walk
/// can list it. Stored documents under it stay as they are (their files are planned, and fail
/// `unreadable` if they cannot be read either).
enum UnreadableDirectory {
    static let reason = "unreadable_directory"
    static let message = "unreadable_directory: the directory cannot be listed (permission denied), so nothing under it "
        + "can be imported; give the importing user read and search permission on it"
}
