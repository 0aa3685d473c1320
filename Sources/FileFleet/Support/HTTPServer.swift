import Foundation
import Synchronization

/// A tiny HTTP/1.1 server for `/healthz`, `/readyz`, `/metrics` and the status page (SPEC §7).
/// One dedicated thread accepts; each connection is answered on a thread of its own, so that a
/// probe never waits behind a page that waits for Postgres. At most `maxConnections` are served
/// at once; past that a connection gets 503 at once. The async handler runs as a task and the
/// connection's thread waits for it, never the cooperative pool.
public final class HTTPServer: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var contentType: String
        public var body: String

        public init(status: Int = 200, contentType: String = "text/plain; charset=utf-8", body: String) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    public typealias Handler = @Sendable (_ path: String) async -> Response

    public let host: String
    public let port: Int
    private let socket: Int32
    private let stopped = Mutex(false)
    private let inFlight = Mutex(0)
    /// Connections answered at once (each holds a thread while its handler runs).
    static let maxConnections = 64

    /// Binds `address` ("HOST:PORT", ":PORT" or "PORT"; the host defaults to 127.0.0.1) and
    /// starts serving. Throws `UsageError` when the address is malformed or taken.
    public init(address: String, handler: @escaping Handler) throws {
        let (host, port) = try Self.parse(address)
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw UsageError("--http \(address): cannot create a socket") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = UInt16(port).bigEndian
        guard inet_pton(AF_INET, host, &sin.sin_addr) == 1 else {
            Glibc.close(fd)
            throw UsageError("--http \(address): \(host) is not an IPv4 address")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 128) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw UsageError("--http \(address): \(reason)")
        }
        self.host = host
        self.port = Int(UInt16(bigEndian: sin.sin_port))
        self.socket = fd
        let thread = Thread { [self] in self.serve(handler) }
        thread.name = "filefleet-http"
        thread.start()
    }

    public func stop() {
        stopped.withLock { $0 = true }
        shutdown(socket, Int32(SHUT_RDWR))
        Glibc.close(socket)
    }

    static func parse(_ address: String) throws -> (String, Int) {
        let parts = address.split(separator: ":", omittingEmptySubsequences: false)
        let host = parts.count == 2 && !parts[0].isEmpty ? String(parts[0]) : "127.0.0.1"
        guard parts.count <= 2, let port = Int(parts.last!), (0...65535).contains(port) else {
            throw UsageError("--http \(address): expected HOST:PORT or PORT")
        }
        return (host, port)
    }

    private func serve(_ handler: @escaping Handler) {
        while !stopped.withLock({ $0 }) {
            let client = accept(socket, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return
            }
            let admitted = inFlight.withLock { n in
                guard n < Self.maxConnections else { return false }
                n += 1
                return true
            }
            guard admitted else {
                Self.write(Response(status: 503, body: "busy\n"), to: client)
                Glibc.close(client)
                continue
            }
            let thread = Thread { [self] in
                Self.answer(client, handler)
                inFlight.withLock { $0 -= 1 }
            }
            thread.name = "filefleet-http-connection"
            thread.start()
        }
    }

    /// Reads one request from `client`, answers it and closes the connection. Blocks.
    private static func answer(_ client: Int32, _ handler: @escaping Handler) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let response: Response
        if let path = readRequestPath(client) {
            let box = Mutex<Response?>(nil)
            let done = DispatchSemaphore(value: 0)
            Task {
                let value = await handler(path)
                box.withLock { $0 = value }
                done.signal()
            }
            done.wait()
            response = box.withLock { $0 } ?? Response(status: 500, body: "no response\n")
        } else {
            response = Response(status: 400, body: "bad request\n")
        }
        write(response, to: client)
        Glibc.close(client)
    }

    /// The path of a `GET` request line, without the query string; nil for anything else.
    static func readRequestPath(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 8192)
        var used = 0
        while used < buffer.count {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + used, $0.count - used) }
            guard n > 0 else { break }
            used += n
            if buffer[..<used].contains(UInt8(ascii: "\n")) { break }
        }
        guard let line = String(decoding: buffer[..<used], as: UTF8.self).split(separator: "\r\n").first ??
                String(decoding: buffer[..<used], as: UTF8.self).split(separator: "\n").first else { return nil }
        let words = line.split(separator: " ")
        guard words.count >= 2, words[0] == "GET" else { return nil }
        return String(words[1].split(separator: "?", maxSplits: 1).first ?? "/")
    }

    static func write(_ response: Response, to fd: Int32) {
        let reason = [200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"]
        let body = Array(response.body.utf8)
        let head = "HTTP/1.1 \(response.status) \(reason[response.status] ?? "Status")\r\n" +
            "Content-Type: \(response.contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let bytes = Array(head.utf8) + body
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return }
            sent += n
        }
    }
}
