internal import CRdKafka

public struct KafkaTopicPartition: Hashable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }
}

/// A consumed message; its bytes are copies, owned by Swift.
public struct KafkaMessage: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// nil for a null key.
    public var key: [UInt8]?
    /// nil for a null payload (a tombstone).
    public var value: [UInt8]?

    public var topicPartition: KafkaTopicPartition { KafkaTopicPartition(topic: topic, partition: partition) }

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8]?) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
    }

    /// Copies everything out of `message`, which the caller still has to destroy.
    init(copying message: UnsafePointer<rd_kafka_message_t>, topic: String) {
        let m = message.pointee
        self.init(topic: topic, partition: m.partition, offset: m.offset,
                  key: Self.bytes(m.key, m.key_len),
                  value: Self.bytes(m.payload, m.len))
    }

    static func bytes(_ pointer: UnsafeMutableRawPointer?, _ count: Int) -> [UInt8]? {
        guard let pointer else { return nil }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

/// A message to produce. A nil `partition` lets the partitioner choose (murmur2 of the key).
public struct KafkaRecord: Sendable, Hashable {
    public var topic: String
    public var partition: Int32?
    public var key: [UInt8]?
    public var value: [UInt8]?

    public init(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]?) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
    }

    public init(topic: String, partition: Int32? = nil, key: String, value: [UInt8]?) {
        self.init(topic: topic, partition: partition, key: Array(key.utf8), value: value)
    }
}

/// Where a produced message landed.
public struct KafkaDelivery: Sendable, Hashable {
    public var partition: Int32
    public var offset: Int64
}

/// Helpers for `rd_kafka_topic_partition_list_t`.
enum PartitionList {
    /// A new list the caller destroys.
    static func make(_ partitions: some Sequence<KafkaTopicPartition>) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(1)!
        for tp in partitions { rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition) }
        return list
    }

    /// A new list with offsets, the caller destroys.
    static func make(offsets: [KafkaTopicPartition: Int64]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
        for (tp, offset) in offsets.sorted(by: { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }) {
            rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition).pointee.offset = offset
        }
        return list
    }

    static func elements(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [(KafkaTopicPartition, offset: Int64, err: rd_kafka_resp_err_t)] {
        guard let list, let elems = list.pointee.elems else { return [] }
        return (0..<Int(list.pointee.cnt)).map { i in
            let e = elems[i]
            return (KafkaTopicPartition(topic: String(cString: e.topic), partition: e.partition), e.offset, e.err)
        }
    }

    static func partitions(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [KafkaTopicPartition] {
        elements(list).map(\.0)
    }

    /// The first per-partition error in `list`, if any.
    static func firstError(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>, _ what: String) -> KafkaError? {
        for (tp, _, err) in elements(list) where err != RD_KAFKA_RESP_ERR_NO_ERROR {
            return KafkaError(err, message: "\(what) \(tp): \(String(cString: rd_kafka_err2str(err)))")
        }
        return nil
    }
}

/// Creates an `rd_kafka_t`; `conf` is consumed on success and destroyed on failure.
func makeClient(_ type: rd_kafka_type_t, _ conf: OpaquePointer) throws(KafkaError) -> OpaquePointer {
    var errstr = [CChar](repeating: 0, count: 512)
    guard let rk = rd_kafka_new(type, conf, &errstr, errstr.count) else {
        rd_kafka_conf_destroy(conf)
        throw KafkaError(code: .invalidArgument, message: "cannot create Kafka client: \(text(errstr))")
    }
    return rk
}

/// The text librdkafka wrote into an `errstr` buffer.
func text(_ errstr: [CChar]) -> String {
    String(decoding: errstr.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
