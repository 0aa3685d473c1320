import Foundation
import FleetPostgres
import Synchronization

/// The heartbeat's own connection, replaced when it breaks; shared by the beat and the release.
final class HeartbeatConnection: Sendable {
    private let connection: Mutex<PostgresConnection>

    init(_ connection: PostgresConnection) {
        self.connection = Mutex(connection)
    }

    var current: PostgresConnection { connection.withLock { $0 } }

    @discardableResult
    func replace(with fresh: PostgresConnection) -> PostgresConnection {
        connection.withLock { old in defer { old = fresh }; return old }
    }
}
