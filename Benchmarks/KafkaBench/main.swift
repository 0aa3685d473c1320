// Produce and consume rates through FleetKafka, and through kcat (if installed) on the same broker.
// Usage: kafka-bench BROKERS [MESSAGES=200000] [BYTES=100]   (BUFFER_LIMIT=N sets consumerBufferLimit)
import FleetKafka
import Foundation

let args = CommandLine.arguments
guard args.count >= 2 else { print("usage: kafka-bench BROKERS [MESSAGES] [BYTES]"); exit(2) }
let brokers = args[1]
let count = args.count > 2 ? Int(args[2])! : 200_000
let size = args.count > 3 ? Int(args[3])! : 100
let stamp = "\(ProcessInfo.processInfo.processIdentifier)_\(Int(Date().timeIntervalSince1970))"

var configuration = KafkaConfiguration(brokers: brokers, clientID: "kafka-bench")
configuration.sessionTimeout = .seconds(3)
configuration.heartbeatInterval = .milliseconds(500)
configuration.maxPollInterval = .seconds(10)
if let limit = ProcessInfo.processInfo.environment["BUFFER_LIMIT"] { configuration.consumerBufferLimit = Int(limit)! }

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
func rate(_ n: Int, _ d: Duration) -> String { String(format: "%9.0f msg/s  (%d in %.2f s)", Double(n) / seconds(d), n, seconds(d)) }

print("librdkafka \(LibRdKafka.versionString), \(count) messages of \(size) bytes, 1 partition")
guard LibRdKafka.isSupported else {
    print("kafka-bench: librdkafka \(LibRdKafka.versionString) is too old, 2.8.0 or newer is needed")
    exit(1)
}
let admin = try KafkaAdmin(configuration: configuration)
let topic = "bench_fleet_\(stamp)"
try await admin.createTopic(topic, partitions: 1)

// Produce through FleetKafka: batches of 100,000, each awaiting all its delivery reports.
let payload = [UInt8](repeating: UInt8(ascii: "x"), count: size)
let producer = try KafkaProducer(configuration: configuration)
let clock = ContinuousClock()
var start = clock.now
var sent = 0
while sent < count {
    let n = min(100_000, count - sent)
    try await producer.sendBatch((0..<n).map { i in KafkaRecord(topic: topic, key: nil, value: payload) })
    sent += n
}
print("FleetKafka produce (sendBatch 100k):", rate(count, start.duration(to: clock.now)))
await producer.close()

// Consume through FleetKafka as a group member; timed from the first message.
let consumer = try KafkaConsumer(configuration: configuration, group: "bench_\(stamp)", topics: [topic])
var received = 0
start = clock.now
var first: ContinuousClock.Instant?
while received < count {
    let batch = try await consumer.poll(maxMessages: 10_000, timeout: .seconds(1))
    if first == nil, !batch.isEmpty { first = clock.now }
    received += batch.count
    if start.duration(to: clock.now) > .seconds(120) { break }
}
print("FleetKafka consume (poll 10k):     ", rate(received, first!.duration(to: clock.now)),
      String(format: " join+first fetch %.2f s", seconds(start.duration(to: first!))))
await consumer.close()

// kcat on the same broker.
let kcat = ["/usr/bin/kcat", "/usr/local/bin/kcat", "/usr/bin/kafkacat"].first { FileManager.default.isExecutableFile(atPath: $0) }
guard let kcat else { print("kcat: not installed"); exit(0) }
let kcatTopic = "bench_kcat_\(stamp)"
try await admin.createTopic(kcatTopic, partitions: 1)
let line = String(repeating: "x", count: size - 1) + "\n"
let file = FileManager.default.temporaryDirectory.appendingPathComponent("kafka-bench-\(stamp).txt")
try String(repeating: line, count: count).write(to: file, atomically: false, encoding: .utf8)
defer { try? FileManager.default.removeItem(at: file) }

func run(_ arguments: [String]) throws -> (Duration, Int) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: kcat)
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env["LD_LIBRARY_PATH"] = "/usr/local/lib"
    p.environment = env
    let out = Pipe()
    p.standardOutput = out
    let begin = clock.now
    try p.run()
    var lines = 0
    for byte in out.fileHandleForReading.readDataToEndOfFile() where byte == UInt8(ascii: "\n") { lines += 1 }
    p.waitUntilExit()
    return (begin.duration(to: clock.now), lines)
}
// Same producer settings as FleetKafka's (idempotent, acks=all).
let (produceTime, _) = try run(["-P", "-b", brokers, "-t", kcatTopic, "-l", "-X", "enable.idempotence=true",
                                "-X", "acks=all", "-X", "linger.ms=5", file.path])
print("kcat produce -P -l:                ", rate(count, produceTime), " (process start included)")
let (consumeTime, lines) = try run(["-C", "-b", brokers, "-t", kcatTopic, "-o", "beginning", "-e", "-q", "-c", String(count)])
print("kcat consume -C -e (no group):     ", rate(lines, consumeTime), " (process start and metadata included)")
