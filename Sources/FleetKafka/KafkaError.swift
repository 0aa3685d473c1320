internal import CRdKafka

/// An error from librdkafka or from the broker, with librdkafka's `rd_kafka_resp_err_t` code.
public struct KafkaError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: RawRepresentable, Hashable, Sendable {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static let noError = Code(rawValue: 0)
        // Local errors (negative).
        public static let badMessage = Code(rawValue: -199)
        public static let destroyed = Code(rawValue: -197)
        public static let fail = Code(rawValue: -196)
        public static let transport = Code(rawValue: -195)
        public static let messageTimedOut = Code(rawValue: -192)
        public static let unknownPartition = Code(rawValue: -190)
        public static let unknownTopic = Code(rawValue: -188)
        public static let allBrokersDown = Code(rawValue: -187)
        public static let invalidArgument = Code(rawValue: -186)
        public static let timedOut = Code(rawValue: -185)
        public static let queueFull = Code(rawValue: -184)
        public static let state = Code(rawValue: -172)
        public static let unsupportedFeature = Code(rawValue: -165)
        public static let purgeQueue = Code(rawValue: -152)
        public static let purgeInflight = Code(rawValue: -151)
        public static let fatal = Code(rawValue: -150)
        // Broker errors.
        public static let unknownTopicOrPartition = Code(rawValue: 3)
        public static let leaderNotAvailable = Code(rawValue: 5)
        public static let notLeaderForPartition = Code(rawValue: 6)
        public static let requestTimedOut = Code(rawValue: 7)
        public static let networkException = Code(rawValue: 13)
        public static let coordinatorLoadInProgress = Code(rawValue: 14)
        public static let coordinatorNotAvailable = Code(rawValue: 15)
        public static let notCoordinator = Code(rawValue: 16)
        public static let notEnoughReplicas = Code(rawValue: 19)
        public static let notEnoughReplicasAfterAppend = Code(rawValue: 20)
        public static let illegalGeneration = Code(rawValue: 22)
        public static let unknownMemberID = Code(rawValue: 25)
        public static let rebalanceInProgress = Code(rawValue: 27)
        public static let topicAlreadyExists = Code(rawValue: 36)
        public static let unknownProducerID = Code(rawValue: 59)

        /// librdkafka's symbolic name, e.g. `_MSG_TIMED_OUT` or `UNKNOWN_TOPIC_OR_PART`.
        public var name: String { String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue))) }
    }

    public var code: Code
    public var message: String
    /// The client is unusable after this error: a producer replaces its client on the next send.
    public var isFatal: Bool
    public var isRetriable: Bool

    public init(code: Code, message: String? = nil, isFatal: Bool = false, isRetriable: Bool? = nil) {
        self.code = code
        self.message = message ?? String(cString: rd_kafka_err2str(rd_kafka_resp_err_t(code.rawValue)))
        self.isFatal = isFatal || code == .fatal
        self.isRetriable = isRetriable ?? Self.retriableCodes.contains(code)
    }

    /// Transient conditions: retrying the same operation later can succeed.
    static let retriableCodes: Set<Code> = [
        .transport, .messageTimedOut, .allBrokersDown, .timedOut, .queueFull,
        .leaderNotAvailable, .notLeaderForPartition, .requestTimedOut, .networkException,
        .coordinatorLoadInProgress, .coordinatorNotAvailable, .notCoordinator,
        .notEnoughReplicas, .notEnoughReplicasAfterAppend, .rebalanceInProgress,
        .purgeQueue, .purgeInflight,
    ]

    public var description: String {
        var text = "Kafka error \(code.name) (\(code.rawValue)): \(message)"
        if isFatal { text += " [fatal]" }
        return text
    }

    init(_ err: rd_kafka_resp_err_t, message: String? = nil) {
        self.init(code: Code(rawValue: err.rawValue), message: message)
    }

    /// Takes ownership of `error` and destroys it.
    init(consuming error: OpaquePointer) {
        defer { rd_kafka_error_destroy(error) }
        self.init(code: Code(rawValue: rd_kafka_error_code(error).rawValue),
                  message: String(cString: rd_kafka_error_string(error)),
                  isFatal: rd_kafka_error_is_fatal(error) != 0,
                  isRetriable: rd_kafka_error_is_retriable(error) != 0)
    }

    static func check(_ err: rd_kafka_resp_err_t, _ what: String) throws(KafkaError) {
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return }
        throw KafkaError(err, message: "\(what): \(String(cString: rd_kafka_err2str(err)))")
    }

    static func checkSupportedLibrary() throws(KafkaError) {
        guard LibRdKafka.isSupported else {
            throw KafkaError(code: .unsupportedFeature, message:
                "librdkafka \(LibRdKafka.versionString) is loaded, FileFleet needs 2.8.0 or newer (see SPEC §9.2; check LD_LIBRARY_PATH)")
        }
    }
}
