@testable import FleetKafka
import Foundation
import Synchronization
import TestSupport
import Testing

@Suite("FleetKafka against Tansu")
struct FleetKafkaTests {
    @Test func produceAndConsumeOneMessage() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 1)
        let producer = try KafkaProducer(configuration: configuration)
        let delivery = try await producer.send(topic: topic, key: "k", value: bytes("hello"))
        #expect(delivery.partition == 0)
        #expect(delivery.offset == 0)
        await producer.close()

        let consumer = try KafkaConsumer(configuration: configuration, group: TestEnvironment.uniqueName("group"), topics: [topic])
        let messages = try await receive(consumer, count: 1)
        await consumer.close()
        #expect(messages == [KafkaMessage(topic: topic, partition: 0, offset: 0, key: bytes("k"), value: bytes("hello"))])
    }

    @Test func roundTripKeepsContentAndPerPartitionOrder() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 4)
        let producer = try KafkaProducer(configuration: configuration)
        let records = (0..<200).map { i in KafkaRecord(topic: topic, key: "key-\(i % 13)", value: bytes("value-\(i)")) }
        try await producer.sendBatch(records)
        await producer.close()

        let consumer = try KafkaConsumer(configuration: configuration, group: TestEnvironment.uniqueName("group"), topics: [topic])
        let messages = try await receive(consumer, count: 200)
        await consumer.close()
        #expect(messages.count == 200)
        #expect(Set(messages.map { $0.value! }) == Set(records.map { $0.value! }))
        for (key, group) in Dictionary(grouping: messages, by: { $0.key! }) {
            #expect(Set(group.map(\.partition)).count == 1, "key \(String(decoding: key, as: UTF8.self)) on one partition")
            let sent = records.filter { $0.key == key }.map(\.value)
            #expect(group.map(\.value) == sent, "in the order sent")
        }
    }

    @Test func sameKeyGoesToTheSamePartitionAsJavaClients() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 8)
        let producer = try KafkaProducer(configuration: configuration)
        for key in ["notes/a.md", "notes/b.md", "docs/index.md", "x", "ünïcødé/päth.txt"] {
            var partitions: Set<Int32> = []
            for i in 0..<5 {
                partitions.insert(try await producer.send(topic: topic, key: key, value: bytes("\(i)")).partition)
            }
            #expect(partitions == [javaPartition(bytes(key), partitions: 8)], "\(key)")
        }
        await producer.close()
    }

    @Test func commitThenCloseAndReopenResumesAfterTheLastCommit() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 1)
        let group = TestEnvironment.uniqueName("group")
        let producer = try KafkaProducer(configuration: configuration)
        try await producer.sendBatch((0..<10).map { KafkaRecord(topic: topic, key: nil, value: bytes("m\($0)")) })
        await producer.close()

        let first = try KafkaConsumer(configuration: configuration, group: group, topics: [topic])
        let messages = try await receive(first, count: 10)
        #expect(messages.map(\.offset) == Array(0..<10))
        try await first.commit(Array(messages.prefix(6)))
        let tp = KafkaTopicPartition(topic: topic, partition: 0)
        #expect(try await first.committed([tp]) == [tp: 6])
        await first.close()

        let second = try KafkaConsumer(configuration: configuration, group: group, topics: [topic])
        let rest = try await receive(second, count: 4)
        #expect(rest.map(\.offset) == [6, 7, 8, 9])
        #expect(try await receiveAll(second, for: .seconds(1)).isEmpty)
        await second.close()
    }

    @Test func uncommittedMessagesAreRedelivered() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 2)
        let group = TestEnvironment.uniqueName("group")
        let producer = try KafkaProducer(configuration: configuration)
        try await producer.sendBatch((0..<20).map { KafkaRecord(topic: topic, key: "k\($0)", value: bytes("m\($0)")) })
        await producer.close()

        let first = try KafkaConsumer(configuration: configuration, group: group, topics: [topic])
        let seen = try await receive(first, count: 20)
        #expect(seen.count == 20)
        await first.close()   // nothing committed

        let second = try KafkaConsumer(configuration: configuration, group: group, topics: [topic])
        let again = try await receive(second, count: 20)
        await second.close()
        #expect(Set(again) == Set(seen))
    }

    @Test func twoConsumersSplitThePartitions() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 4)
        let group = TestEnvironment.uniqueName("group")
        let a = try KafkaConsumer(configuration: configuration, group: group, topics: [topic])
        #expect(await eventually { a.assignment.count == 4 })
        let b = try KafkaConsumer(configuration: configuration, group: group, topics: [topic])
        let split = await eventually {
            a.assignment.count == 2 && b.assignment.count == 2 && a.assignment.isDisjoint(with: b.assignment)
        }
        #expect(split, "a: \(a.assignment), b: \(b.assignment)")

        let producer = try KafkaProducer(configuration: configuration)
        try await producer.sendBatch((0..<40).map { KafkaRecord(topic: topic, key: "k\($0)", value: bytes("m\($0)")) })
        await producer.close()

        let received = try await receive([a, b], count: 40)
        let (ma, mb) = (received[0], received[1])
        #expect(ma.count + mb.count == 40)
        #expect(Set(ma.map(\.topicPartition)).isSubset(of: a.assignment))
        #expect(Set(mb.map(\.topicPartition)).isSubset(of: b.assignment))
        #expect(!ma.isEmpty && !mb.isEmpty)
        await a.close()
        await b.close()
    }

    /// A member told to stop rejoining leaves when a peer's departure revokes its partitions,
    /// so its own close is not held behind a JoinGroup (Tansu answers a follower's after 3 s).
    @Test func aConsumerThatStopsRejoiningClosesAtOnceAfterItsPeerLeft() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 4)
        let group = TestEnvironment.uniqueName("group")
        let a = try KafkaConsumer(configuration: configuration, group: group, topics: [topic])
        #expect(await eventually { a.assignment.count == 4 })
        let b = try KafkaConsumer(configuration: configuration, group: group, topics: [topic])
        #expect(await eventually { a.assignment.count == 2 && b.assignment.count == 2 })
        b.stopRejoining()
        await a.close()
        #expect(await eventually { b.assignment.isEmpty }, "the peer's departure revokes b's partitions")
        try await Task.sleep(for: .milliseconds(100))  // a rejoin would be in flight by now
        let started = ContinuousClock.now
        await b.close()
        let took = ContinuousClock.now - started
        #expect(took < .milliseconds(600), "close took \(took)")  // 0.05 s; 1.7–2.9 s without the fix
    }

    @Test func partitionsOfASigkilledConsumerMoveToTheSurvivor() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 4)
        let group = TestEnvironment.uniqueName("group")

        let child = Process()
        child.executableURL = try helperExecutable("kafka-test-consumer")
        child.arguments = [configuration.brokers, topic, group]
        let output = LineCollector()
        let pipe = Pipe()
        pipe.fileHandleForReading.readabilityHandler = { output.append($0.availableData) }
        child.standardOutput = pipe
        try child.run()
        defer { if child.isRunning { kill(child.processIdentifier, SIGKILL) } }
        #expect(await eventually { output.lines.contains("assigned 0,1,2,3") }, "child: \(output.lines)")

        let survivor = try KafkaConsumer(configuration: configuration, group: group, topics: [topic])
        #expect(await eventually { survivor.assignment.count == 2 })
        let childPartitions = Set((0..<4).map { KafkaTopicPartition(topic: topic, partition: $0) }).subtracting(survivor.assignment)
        #expect(await eventually { output.lines.last?.hasPrefix("assigned") == true && output.lines.last != "assigned 0,1,2,3" })

        let producer = try KafkaProducer(configuration: configuration)
        let records = (0..<100).map { KafkaRecord(topic: topic, key: "k\($0)", value: bytes("m\($0)")) }
        try await producer.sendBatch(records)
        await producer.close()
        let childShare = records.filter { childPartitions.contains(KafkaTopicPartition(topic: topic, partition: javaPartition($0.key!, partitions: 4))) }.count

        // The survivor processes and commits its own share; the child receives its share and never commits.
        let own = try await receive(survivor, count: 100 - childShare)
        #expect(own.count == 100 - childShare)
        try await survivor.commit(own)
        #expect(await eventually { output.lines.contains("received \(childShare)") }, "child: \(output.lines)")

        let killedAt = ContinuousClock.now
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        #expect(await eventually(within: .seconds(30)) { survivor.assignment.count == 4 })
        let moved = killedAt.duration(to: .now)
        print("rebalance after SIGKILL (session.timeout.ms 3000): \(moved)")
        let redelivered = try await receive(survivor, count: childShare)
        #expect(redelivered.count == childShare)
        #expect(Set(redelivered.map(\.topicPartition)).isSubset(of: childPartitions))
        #expect(try await receiveAll(survivor, for: .seconds(1)).isEmpty, "nothing committed is redelivered")
        await survivor.close()
    }

    @Test func pauseHoldsBackAPartitionAndResumeDeliversItOnce() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 2)
        let producer = try KafkaProducer(configuration: configuration)
        let consumer = try KafkaConsumer(configuration: configuration, group: TestEnvironment.uniqueName("group"), topics: [topic])
        #expect(await eventually { consumer.assignment.count == 2 })
        let p0 = KafkaTopicPartition(topic: topic, partition: 0)
        let p1 = KafkaTopicPartition(topic: topic, partition: 1)

        try await producer.sendBatch((0..<5).map { KafkaRecord(topic: topic, partition: 0, key: nil, value: bytes("a\($0)")) })
        #expect(try await receive(consumer, count: 5).map(\.offset) == [0, 1, 2, 3, 4])
        try consumer.pause([p0])
        try await producer.sendBatch((5..<10).map { KafkaRecord(topic: topic, partition: 0, key: nil, value: bytes("a\($0)")) })
        try await producer.sendBatch((0..<3).map { KafkaRecord(topic: topic, partition: 1, key: nil, value: bytes("b\($0)")) })
        let whilePaused = try await receive([consumer], count: 3)[0]
        #expect(whilePaused.map(\.topicPartition) == [p1, p1, p1], "only the unpaused partition")

        try consumer.resume([p0])
        let resumed = try await receive(consumer, count: 5)
        #expect(resumed.map(\.offset) == [5, 6, 7, 8, 9])
        #expect(resumed.allSatisfy { $0.partition == 0 })
        #expect(try await receiveAll(consumer, for: .seconds(1)).isEmpty, "exactly once")
        await producer.close()
        await consumer.close()
    }

    @Test func aSlowApplicationGetsEverythingOnceWhileFetchingIsThrottled() async throws {
        var (configuration, topic) = try await makeTopic(partitions: 2)
        configuration.consumerBufferLimit = 20
        let producer = try KafkaProducer(configuration: configuration)
        let records = (0..<300).map { KafkaRecord(topic: topic, key: "k\($0)", value: bytes("m\($0)")) }
        try await producer.sendBatch(records)
        await producer.close()

        let consumer = try KafkaConsumer(configuration: configuration, group: TestEnvironment.uniqueName("group"), topics: [topic])
        var messages: [KafkaMessage] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while messages.count < 300, ContinuousClock.now < deadline {
            messages += try await consumer.poll(maxMessages: 7, timeout: .milliseconds(300))
            try await Task.sleep(for: .milliseconds(10))   // "importing"
        }
        messages += try await receiveAll(consumer, for: .seconds(1))
        await consumer.close()
        #expect(messages.count == 300)
        #expect(Set(messages.map(\.value)) == Set(records.map(\.value)))
        for partition in Set(messages.map(\.partition)) {
            let offsets = messages.filter { $0.partition == partition }.map(\.offset)
            #expect(offsets == Array(0..<Int64(offsets.count)), "partition \(partition) in order, no gaps or repeats")
        }
    }

    /// An application that stops polling with its buffer full (a worker retrying one batch while
    /// the database is down) holds its partitions back only `holdBack`: then its consumer pauses
    /// fetching and serves the group again, so a new member gets its share, and each message is
    /// received by the member that owns its partition.
    @Test func aStalledApplicationStillLetsTheGroupRebalance() async throws {
        var (configuration, topic) = try await makeTopic(partitions: 4)
        configuration.consumerBufferLimit = 20
        let producer = try KafkaProducer(configuration: configuration)
        try await producer.sendBatch((0..<200).map { KafkaRecord(topic: topic, key: "k\($0)", value: bytes("m\($0)")) })
        await producer.close()
        let group = TestEnvironment.uniqueName("group")
        let stalled = try KafkaConsumer(configuration: configuration, group: group, topics: [topic])
        #expect(await eventually { stalled.assignment.count == 4 })
        let first = try await stalled.poll(maxMessages: 5, timeout: .seconds(10))   // then it stops polling
        #expect(first.count == 5)
        try await Task.sleep(for: .seconds(1))
        let joining = try KafkaConsumer(configuration: configuration, group: group, topics: [topic])
        let split = await eventually(within: .seconds(30)) {
            stalled.assignment.count == 2 && joining.assignment.count == 2 && stalled.assignment.isDisjoint(with: joining.assignment)
        }
        #expect(split, "stalled: \(stalled.assignment), joining: \(joining.assignment)")
        let received = try await receive([stalled, joining], count: 150)
        for (consumer, messages) in zip([stalled, joining], received) {
            #expect(Set(messages.map(\.topicPartition)).isSubset(of: consumer.assignment))
        }
        #expect(!received[1].isEmpty, "the new member got nothing")
        await stalled.close()
        await joining.close()
    }

    @Test func closeFlushesEverythingEnqueued() async throws {
        var (configuration, topic) = try await makeTopic(partitions: 3)
        configuration.linger = .seconds(20)   // so that the messages are still queued at close: flush must not wait for it
        configuration.messageTimeout = .seconds(60)
        let producer = try KafkaProducer(configuration: configuration)
        let records = (0..<1000).map { KafkaRecord(topic: topic, key: "k\($0)", value: bytes("m\($0)")) }
        let batch = Task { try await producer.sendBatch(records) }
        #expect(await eventually { producer.outstandingMessages == 1000 })
        let closing = ContinuousClock.now
        await producer.close()
        #expect(ContinuousClock.now - closing < .seconds(10), "close waited for the linger")
        try await batch.value   // every delivery report was a success

        let consumer = try KafkaConsumer(configuration: configuration, group: TestEnvironment.uniqueName("group"), topics: [topic])
        let messages = try await receive(consumer, count: 1000)
        await consumer.close()
        #expect(Set(messages.map(\.value)) == Set(records.map(\.value)))
    }

    @Test func deliveryErrorsAreThrownAndNothingLeaks() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 1)
        let producer = try KafkaProducer(configuration: configuration)
        try await producer.send(topic: topic, key: nil, value: bytes("warm-up"))   // metadata known

        // Fails in the delivery report: the partition does not exist.
        let good = (0..<50).map { KafkaRecord(topic: topic, key: nil, value: bytes("m\($0)")) }
        let badPartition = try await #require(throws: KafkaError.self) {
            try await producer.sendBatch(good + [KafkaRecord(topic: topic, partition: 99, key: nil, value: [1])] + good)
        }
        #expect(badPartition.code == .unknownPartition, "\(badPartition)")
        // Fails when enqueued, after 50 others were enqueued: larger than message.max.bytes.
        let tooLarge = try await #require(throws: KafkaError.self) {
            try await producer.sendBatch(good + [KafkaRecord(topic: topic, key: nil, value: [UInt8](repeating: 0, count: 2_000_000))])
        }
        #expect(tooLarge.code.name == "MSG_SIZE_TOO_LARGE", "\(tooLarge)")
        await producer.close()
        #expect(producer.liveGroups.value.load(ordering: .relaxed) == 0, "every retained delivery group was released")
    }

    /// SPEC §9.1: after a broker restart an idempotent producer loops on an unknown producer id.
    @Test func producerRecoversAfterABrokerRestart() async throws {
        let broker = try await TansuBroker.start()
        var configuration = testConfiguration(broker.brokers)
        configuration.messageTimeout = .seconds(5)
        let admin = try KafkaAdmin(configuration: configuration)
        let topic = TestEnvironment.uniqueName("topic")
        try await admin.createTopic(topic, partitions: 1)
        let producer = try KafkaProducer(configuration: configuration)
        try await producer.send(topic: topic, key: "k", value: bytes("before"))

        try await broker.restart()
        try await admin.createTopic(topic, partitions: 1)
        var delivered: KafkaDelivery?
        var errors: [KafkaError] = []
        for attempt in 0..<5 where delivered == nil {
            do {
                delivered = try await producer.send(topic: topic, key: "k", value: bytes("after \(attempt)"))
            } catch let error as KafkaError {
                #expect(error.isRetriable, "\(error)")
                errors.append(error)
            }
        }
        #expect(delivered != nil, "\(errors)")
        // Each timeout recreates the client; one recreation usually suffices, a slow restart may take two.
        #expect(errors.count <= 2, "\(errors)")
        #expect(producer.clientsCreated == 1 + errors.count)
        await producer.close()
        try await broker.stop()
    }

    /// `lag`: what the owned partitions hold beyond what `poll` returned. Produced one message at
    /// a time: the test broker's high watermark is wrong after multi-message batches (SPEC §9.1).
    @Test func lagCountsWhatPollHasNotReturned() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 1)
        let producer = try KafkaProducer(configuration: configuration)
        for i in 0..<20 { try await producer.send(topic: topic, key: "k", value: bytes("m\(i)")) }
        await producer.close()

        let consumer = try KafkaConsumer(configuration: configuration, group: TestEnvironment.uniqueName("group"), topics: [topic])
        #expect(consumer.lag == nil)  // nothing owned yet
        let first = try await receive(consumer, count: 5)
        #expect(first.count == 5)
        #expect(await eventually { consumer.lag == 15 }, "lag \(String(describing: consumer.lag))")
        let rest = try await receive(consumer, count: 15)
        #expect(rest.count == 15)
        #expect(await eventually { consumer.lag == 0 }, "lag \(String(describing: consumer.lag))")
        await consumer.close()
    }

    @Test func nullPayloadsEmptyAndGarbageBytesArriveAsSent() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 1)
        var garbage = (0...255).map { UInt8($0) }
        garbage += [0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0x00, 0x00]   // invalid UTF-8, NULs
        let records = [
            KafkaRecord(topic: topic, key: nil, value: nil),
            KafkaRecord(topic: topic, key: bytes("tombstone"), value: nil),
            KafkaRecord(topic: topic, key: [], value: []),
            KafkaRecord(topic: topic, key: garbage, value: garbage.reversed()),
            KafkaRecord(topic: topic, key: nil, value: [UInt8](repeating: 0, count: 100_000)),
        ]
        let producer = try KafkaProducer(configuration: configuration)
        try await producer.sendBatch(records)
        await producer.close()

        let consumer = try KafkaConsumer(configuration: configuration, group: TestEnvironment.uniqueName("group"), topics: [topic])
        let messages = try await receive(consumer, count: records.count)
        await consumer.close()
        #expect(messages.map(\.key) == records.map(\.key))
        #expect(messages.map(\.value) == records.map(\.value))
    }

    @Test func revokedPartitionsAreCommittedBeforeTheyMove() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 2)
        let group = TestEnvironment.uniqueName("group")
        let producer = try KafkaProducer(configuration: configuration)
        try await producer.sendBatch((0..<20).map { KafkaRecord(topic: topic, key: "k\($0)", value: bytes("m\($0)")) })

        // The "worker": holds a polled batch in flight; on revocation it finishes and commits it.
        let inFlight = Mutex<[KafkaMessage]>([])
        let revocations = Mutex<[[KafkaTopicPartition]]>([])
        let ownedDuringRevocation = Mutex<[Set<KafkaTopicPartition>]>([])
        let commitErrors = Mutex<[any Error]>([])
        let box = Mutex<KafkaConsumer?>(nil)
        let a = try KafkaConsumer(configuration: configuration, group: group, topics: [topic]) { partitions in
            revocations.withLock { $0.append(partitions) }
            let consumer = box.withLock { $0 }
            // New work must not take up a partition whose revocation has started; work in flight still commits it.
            ownedDuringRevocation.withLock { $0.append(consumer?.assignment ?? []) }
            let batch = inFlight.withLock { b in defer { b = [] }; return b }
            do { try await consumer?.commit(batch) } catch { commitErrors.withLock { $0.append(error) } }
        }
        box.withLock { $0 = a }
        let batch = try await receive(a, count: 20)
        #expect(batch.count == 20)
        inFlight.withLock { $0 = batch }

        let b = try KafkaConsumer(configuration: configuration, group: group, topics: [topic])
        #expect(await eventually { b.assignment.count == 1 && a.assignment.count == 1 })
        #expect(revocations.withLock { $0 }.first?.count == 2, "eager protocol revokes everything first")
        #expect(inFlight.withLock { $0 }.isEmpty)
        #expect(ownedDuringRevocation.withLock { $0 }.first == [], "the revoked partitions were still listed")
        #expect(commitErrors.withLock { $0 }.isEmpty, "\(commitErrors.withLock { $0 })")

        try await producer.sendBatch((20..<30).map { KafkaRecord(topic: topic, key: "k\($0)", value: bytes("m\($0)")) })
        let values = try await receive([a, b], count: 10).joined().map { String(decoding: $0.value!, as: UTF8.self) }
        #expect(Set(values) == Set((20..<30).map { "m\($0)" }), "the committed 20 are not redelivered")
        #expect(values.count == 10)
        await producer.close()
        box.withLock { $0 = nil }
        await a.close()
        await b.close()
    }

    @Test func perMessageErrorsAreEventsAndTheStreamGoesOn() async throws {
        let (configuration, topic) = try await makeTopic(partitions: 1)
        let missing = TestEnvironment.uniqueName("missing")
        let consumer = try KafkaConsumer(configuration: configuration, group: TestEnvironment.uniqueName("group"),
                                         topics: [topic, missing])
        let errors = Task {
            var seen: [KafkaError] = []
            for await event in consumer.events {
                if case .error(let error) = event { seen.append(error) }
            }
            return seen
        }
        let producer = try KafkaProducer(configuration: configuration)
        try await producer.send(topic: topic, key: nil, value: bytes("still flowing"))
        await producer.close()
        let messages = try await receive(consumer, count: 1)
        #expect(messages.map(\.value) == [bytes("still flowing")])
        await consumer.close()
        let seen = await errors.value
        #expect(seen.contains { $0.code == .unknownTopicOrPartition && $0.message.contains(missing) }, "\(seen)")
    }

    @Test func adminCreatesTopicsIdempotentlyAndDeletesThem() async throws {
        let env = try await TestEnvironment.shared()
        let admin = try KafkaAdmin(configuration: testConfiguration(env.kafkaBrokers))
        let topic = TestEnvironment.uniqueName("topic")
        #expect(try await admin.partitionCount(topic) == nil)
        #expect(try await admin.createTopic(topic, partitions: 3) == true)
        #expect(try await admin.createTopic(topic, partitions: 5) == false)
        #expect(try await admin.partitionCount(topic) == 3)
        try await admin.deleteTopic(topic)
        #expect(await eventually(within: .seconds(5)) { (try? await admin.partitionCount(topic)) == nil })
    }

    @Test func configurationErrorsAreClear() throws {
        var configuration = KafkaConfiguration(brokers: "127.0.0.1:1")
        try configuration.addOption("linger.ms=7")
        #expect(configuration.options == ["linger.ms": "7"])
        #expect(throws: KafkaError.self) { try configuration.addOption("no-equals-sign") }
        configuration.options["no.such.property"] = "1"
        let error = #expect(throws: KafkaError.self) { try KafkaProducer(configuration: configuration) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.description.contains("no.such.property") == true)
        #expect(LibRdKafka.isSupported)
    }

    /// One `--kafka-option` list serves producers and consumers; each gets what it reads, so
    /// librdkafka has nothing to warn about (CONFWARN).
    @Test func eachClientGetsTheOptionsItReads() throws {
        var configuration = KafkaConfiguration(brokers: "127.0.0.1:1")
        for option in ["session.timeout.ms=3000", "linger.ms=7", "socket.timeout.ms=9000", "fetch.min.bytes=10"] {
            try configuration.addOption(option)
        }
        #expect(configuration.passThrough(for: .producer).map(\.0) == ["linger.ms", "socket.timeout.ms"])
        #expect(configuration.passThrough(for: .consumer).map(\.0) == ["fetch.min.bytes", "session.timeout.ms", "socket.timeout.ms"])
        _ = try KafkaProducer(configuration: configuration)  // both still accepted by librdkafka
    }
}
