internal import CRdKafka

/// Topic administration. Each call runs on a thread of its own.
public final class KafkaAdmin: Sendable {
    private let handle: ClientHandle

    public init(configuration: KafkaConfiguration) throws(KafkaError) {
        try KafkaError.checkSupportedLibrary()
        var properties = configuration.commonProperties
        // A metadata request must never create a topic by accident (Tansu creates it with 4 partitions).
        properties.append(("allow.auto.create.topics", "false"))
        let conf = try configuration.makeConf(properties, for: .producer)
        handle = ClientHandle(try makeClient(RD_KAFKA_PRODUCER, conf))
    }

    deinit {
        let handle = self.handle
        startThread(name: "kafka-admin-destroy") {
            handle.retire()
            rd_kafka_destroy(handle.owned)
        }
    }

    /// Creates `name` unless it exists; returns whether it was created. An existing topic keeps
    /// its partition count (see `partitionCount`). Returns once the broker's metadata lists the
    /// topic: a group whose members join before their topic is visible can be assigned nothing
    /// (and Tansu keeps that empty assignment for the life of the group).
    @discardableResult
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1,
                            timeout: Duration = .seconds(30)) async throws -> Bool {
        let created = try await sendCreateTopic(name, partitions: partitions, replicationFactor: replicationFactor, timeout: timeout)
        let deadline = ContinuousClock.now + timeout
        while try await partitionCount(name) == nil {
            guard ContinuousClock.now < deadline else {
                throw KafkaError(code: .timedOut, message: "topic \(name) was created but is not in the broker's metadata after \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return created
    }

    private func sendCreateTopic(_ name: String, partitions: Int, replicationFactor: Int, timeout: Duration) async throws -> Bool {
        let handle = self.handle
        let result: Result<Bool, KafkaError> = await runBlocking(name: "kafka-admin") {
            Result { () throws(KafkaError) in
                try handle.use { rk throws(KafkaError) in
                    var errstr = [CChar](repeating: 0, count: 512)
                    guard let topic = rd_kafka_NewTopic_new(name, Int32(partitions), Int32(replicationFactor), &errstr, errstr.count) else {
                        throw KafkaError(code: .invalidArgument, message: "create topic \(name): \(text(errstr))")
                    }
                    defer { rd_kafka_NewTopic_destroy(topic) }
                    var topics: [OpaquePointer?] = [topic]
                    let err = try Self.request(rk, timeout: timeout, RD_KAFKA_EVENT_CREATETOPICS_RESULT) { options, queue in
                        rd_kafka_CreateTopics(rk, &topics, 1, options, queue)
                    } result: { event in
                        var count = 0
                        let results = rd_kafka_CreateTopics_result_topics(event, &count)
                        return count > 0 ? rd_kafka_topic_result_error(results![0]) : RD_KAFKA_RESP_ERR_NO_ERROR
                    }
                    if err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS { return false }
                    try KafkaError.check(err, "create topic \(name)")
                    return true
                }
            }
        }
        return try result.get()
    }

    public func deleteTopic(_ name: String, timeout: Duration = .seconds(30)) async throws {
        let handle = self.handle
        let result: Result<Void, KafkaError> = await runBlocking(name: "kafka-admin") {
            Result { () throws(KafkaError) in
                try handle.use { rk throws(KafkaError) in
                    guard let topic = rd_kafka_DeleteTopic_new(name) else { return }
                    defer { rd_kafka_DeleteTopic_destroy(topic) }
                    var topics: [OpaquePointer?] = [topic]
                    let err = try Self.request(rk, timeout: timeout, RD_KAFKA_EVENT_DELETETOPICS_RESULT) { options, queue in
                        rd_kafka_DeleteTopics(rk, &topics, 1, options, queue)
                    } result: { event in
                        var count = 0
                        let results = rd_kafka_DeleteTopics_result_topics(event, &count)
                        return count > 0 ? rd_kafka_topic_result_error(results![0]) : RD_KAFKA_RESP_ERR_NO_ERROR
                    }
                    try KafkaError.check(err, "delete topic \(name)")
                }
            }
        }
        try result.get()
    }

    /// The number of partitions of `topic`, or nil if it does not exist.
    public func partitionCount(_ topic: String, timeout: Duration = .seconds(10)) async throws -> Int? {
        let handle = self.handle
        let result: Result<Int?, KafkaError> = await runBlocking(name: "kafka-admin") {
            Result { () throws(KafkaError) in
                try handle.use { rk throws(KafkaError) in
                    var metadata: UnsafePointer<rd_kafka_metadata_t>?
                    // All topics: asking for one would auto-create it on brokers that allow it.
                    try KafkaError.check(rd_kafka_metadata(rk, 1, nil, &metadata,
                                                           Int32(clamping: KafkaConfiguration.milliseconds(timeout))), "metadata")
                    defer { rd_kafka_metadata_destroy(metadata) }
                    guard let md = metadata?.pointee else { return nil }
                    for i in 0..<Int(md.topic_cnt) where String(cString: md.topics[i].topic) == topic {
                        return md.topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR ? Int(md.topics[i].partition_cnt) : nil
                    }
                    return nil
                }
            }
        }
        return try result.get()
    }

    /// Messages of `topic` that `group` has not consumed yet: per partition, the high watermark
    /// minus the group's committed offset (the low watermark where it has none). Nil when the
    /// topic does not exist. An estimate: brokers whose watermarks lag (Tansu, SPEC §9.1) make it low.
    public func unconsumed(group: String, topic: String, timeout: Duration = .seconds(10)) async throws -> Int? {
        guard let count = try await partitionCount(topic, timeout: timeout) else { return nil }
        let handle = self.handle
        let result: Result<Int, KafkaError> = await runBlocking(name: "kafka-admin") {
            Result { () throws(KafkaError) in
                try handle.use { rk throws(KafkaError) in
                    let partitions = (0..<Int32(count)).map { KafkaTopicPartition(topic: topic, partition: $0) }
                    let list = PartitionList.make(partitions)
                    defer { rd_kafka_topic_partition_list_destroy(list) }
                    var committed: [Int32: Int64] = [:]
                    var request: [OpaquePointer?] = [rd_kafka_ListConsumerGroupOffsets_new(group, list)]
                    defer { rd_kafka_ListConsumerGroupOffsets_destroy_array(&request, 1) }
                    let err = try Self.request(rk, timeout: timeout, RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT) { options, queue in
                        rd_kafka_ListConsumerGroupOffsets(rk, &request, 1, options, queue)
                    } result: { event in
                        var groups = 0
                        guard let result = rd_kafka_event_ListConsumerGroupOffsets_result(event),
                              let array = rd_kafka_ListConsumerGroupOffsets_result_groups(result, &groups), groups > 0,
                              let first = array[0] else { return RD_KAFKA_RESP_ERR__BAD_MSG }
                        if let error = rd_kafka_group_result_error(first) { return rd_kafka_error_code(error) }
                        for (tp, offset, err) in PartitionList.elements(rd_kafka_group_result_partitions(first))
                        where err == RD_KAFKA_RESP_ERR_NO_ERROR && offset >= 0 {
                            committed[tp.partition] = offset
                        }
                        return RD_KAFKA_RESP_ERR_NO_ERROR
                    }
                    try KafkaError.check(err, "committed offsets of group \(group)")
                    let ms = Int32(clamping: KafkaConfiguration.milliseconds(timeout))
                    var total = 0
                    for partition in 0..<Int32(count) {
                        var low: Int64 = 0, high: Int64 = 0
                        try KafkaError.check(rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high, ms),
                                             "watermarks of \(topic) [\(partition)]")
                        total += Int(max(0, high - (committed[partition] ?? low)))
                    }
                    return total
                }
            }
        }
        return try result.get()
    }

    /// Sends one admin request and waits for its result event on a private queue.
    private static func request(
        _ rk: OpaquePointer, timeout: Duration, _ type: Int32,
        send: (OpaquePointer, OpaquePointer) -> Void,
        result: (OpaquePointer) -> rd_kafka_resp_err_t
    ) throws(KafkaError) -> rd_kafka_resp_err_t {
        let ms = Int32(clamping: KafkaConfiguration.milliseconds(timeout))
        let queue = rd_kafka_queue_new(rk)!
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY)!
        defer { rd_kafka_AdminOptions_destroy(options) }
        var errstr = [CChar](repeating: 0, count: 512)
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, ms, &errstr, errstr.count)
        _ = rd_kafka_AdminOptions_set_request_timeout(options, ms, &errstr, errstr.count)
        send(options, queue)
        guard let event = rd_kafka_queue_poll(queue, ms + 1000) else {
            throw KafkaError(code: .timedOut, message: "admin request timed out after \(timeout)")
        }
        defer { rd_kafka_event_destroy(event) }
        guard rd_kafka_event_type(event) == type else {
            throw KafkaError(code: .fail, message: "unexpected admin event \(String(cString: rd_kafka_event_name(event)))")
        }
        let err = rd_kafka_event_error(event)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, message: String(cString: rd_kafka_event_error_string(event)))
        }
        return result(event)
    }
}
