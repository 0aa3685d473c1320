import FleetKafka
import Foundation
import Synchronization
import TestSupport
import Testing

/// SPEC §9.1: Tansu joins after about session.timeout.ms / 2.
func testConfiguration(_ brokers: String) -> KafkaConfiguration {
    var configuration = KafkaConfiguration(brokers: brokers, clientID: "fleetkafka-tests")
    configuration.sessionTimeout = .seconds(3)
    configuration.heartbeatInterval = .milliseconds(500)
    configuration.maxPollInterval = .seconds(10)
    configuration.revocationTimeout = .seconds(5)
    return configuration
}

/// A fresh topic with `partitions`, created explicitly (a metadata request would create 4).
func makeTopic(partitions: Int) async throws -> (KafkaConfiguration, String) {
    let env = try await TestEnvironment.shared()
    let configuration = testConfiguration(env.kafkaBrokers)
    let topic = TestEnvironment.uniqueName("topic")
    let admin = try KafkaAdmin(configuration: configuration)
    try await admin.createTopic(topic, partitions: partitions)
    return (configuration, topic)
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Polls until `count` messages arrived or `timeout` passed.
func receive(_ consumer: KafkaConsumer, count: Int, within timeout: Duration = .seconds(20)) async throws -> [KafkaMessage] {
    let deadline = ContinuousClock.now + timeout
    var messages: [KafkaMessage] = []
    while messages.count < count, ContinuousClock.now < deadline {
        messages += try await consumer.poll(maxMessages: count - messages.count, timeout: .milliseconds(500))
    }
    return messages
}

/// Polls all `consumers` until `count` messages have come to them together (or `timeout`), then
/// one second more to catch any extra; returns what each one received.
func receive(_ consumers: [KafkaConsumer], count: Int, within timeout: Duration = .seconds(20)) async throws -> [[KafkaMessage]] {
    var received = consumers.map { _ in [KafkaMessage]() }
    var deadline = ContinuousClock.now + timeout
    var settling = false
    while ContinuousClock.now < deadline {
        for (i, consumer) in consumers.enumerated() {
            received[i] += try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(100))
        }
        if !settling, received.joined().count >= count { (settling, deadline) = (true, .now + .seconds(1)) }
    }
    return received
}

/// Polls for `duration` and returns everything that came.
func receiveAll(_ consumer: KafkaConsumer, for duration: Duration) async throws -> [KafkaMessage] {
    let deadline = ContinuousClock.now + duration
    var messages: [KafkaMessage] = []
    while ContinuousClock.now < deadline {
        messages += try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(200))
    }
    return messages
}

/// Waits for `condition`, polling every 50 ms; returns whether it held in time.
@discardableResult
func eventually(within timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// Kafka's `Utils.murmur2` (as used by the Java client's default partitioner) for keyed records.
func javaPartition(_ key: [UInt8], partitions: Int) -> Int32 {
    let seed: UInt32 = 0x9747_b28c, m: UInt32 = 0x5bd1_e995, r: UInt32 = 24
    var h = seed ^ UInt32(key.count)
    let blocks = key.count / 4
    for i in 0..<blocks {
        let j = i * 4
        var k = UInt32(key[j]) | UInt32(key[j + 1]) << 8 | UInt32(key[j + 2]) << 16 | UInt32(key[j + 3]) << 24
        k = k &* m
        k ^= k >> r
        k = k &* m
        h = h &* m
        h ^= k
    }
    let tail = blocks * 4
    switch key.count % 4 {
    case 3:
        h ^= UInt32(key[tail + 2]) << 16
        fallthrough
    case 2:
        h ^= UInt32(key[tail + 1]) << 8
        fallthrough
    case 1:
        h ^= UInt32(key[tail])
        h = h &* m
    default: break
    }
    h ^= h >> 13
    h = h &* m
    h ^= h >> 15
    return Int32((h & 0x7fff_ffff) % UInt32(partitions))
}

/// Collects a child's stdout lines.
final class LineCollector: Sendable {
    private let state = Mutex<(lines: [String], partial: String)>(([], ""))
    var lines: [String] { state.withLock { $0.lines } }

    func append(_ data: Data) {
        state.withLock { s in
            s.partial += String(decoding: data, as: UTF8.self)
            while let nl = s.partial.firstIndex(of: "\n") {
                s.lines.append(String(s.partial[..<nl]))
                s.partial = String(s.partial[s.partial.index(after: nl)...])
            }
        }
    }
}

/// The helper executable, built next to the test bundle.
func helperExecutable(_ name: String) throws -> URL {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    let url = exe.deletingLastPathComponent().appendingPathComponent(name)
    guard FileManager.default.isExecutableFile(atPath: url.path) else {
        throw KafkaError(code: .fail, message: "\(url.path) is missing: run `swift build --build-tests` first")
    }
    return url
}
