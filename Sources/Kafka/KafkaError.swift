import CRdKafka

/// An error from the Kafka layer: what went wrong, where, and which setting to check.
///
/// `description` is one line meant for an operator, e.g.
/// `cannot reach broker 127.0.0.1:9 (bootstrap.servers): ... Connection refused ...`.
/// Callers branch on `code`; the optional fields say where the error happened when known.
///
/// Not every value is a failure: `KafkaConsumer.poll` also reports events through this type
/// (`.partitionEOF` when a partition is caught up, `.offsetsLost` when retention removed records
/// before they were read), so that nothing the broker tells the consumer is dropped silently.
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    /// The kind of error. Compare with the static members (`error.code == .brokerUnreachable`).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidConfiguration, brokerUnreachable, authenticationFailed, tlsFailed, timedOut, unknownTopic, unknownPartition
            case partitionCountMismatch, topicCreationFailed, produceFailed, flushTimedOut
            case partitionEOF, offsetsLost, offsetRewound, offsetOutOfRange, consumeFailed
            case client, fatal, closed, embeddedBroker, listenFailed
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A client property was unknown or had an invalid value (see `[kafka.properties]`).
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// No broker of `bootstrap.servers` answered in time, or every one refused the connection.
        public static let brokerUnreachable = Code(.brokerUnreachable)
        /// A broker answered but refused the client's SASL credentials, or does not offer the
        /// SASL mechanism asked for (see `sasl.mechanism`, `sasl.username`, `sasl.password`).
        public static let authenticationFailed = Code(.authenticationFailed)
        /// The TLS handshake with a broker failed: an untrusted or mismatched certificate, or a
        /// listener that does not speak TLS (see `security.protocol`, `ssl.ca.location`).
        public static let tlsFailed = Code(.tlsFailed)
        /// A blocking request (metadata, watermarks, admin) did not complete within its timeout.
        public static let timedOut = Code(.timedOut)
        /// The topic does not exist on the cluster.
        public static let unknownTopic = Code(.unknownTopic)
        /// The partition does not exist in the topic.
        public static let unknownPartition = Code(.unknownPartition)
        /// The topic exists with a different partition count than the configuration asks for.
        public static let partitionCountMismatch = Code(.partitionCountMismatch)
        /// The cluster refused or could not complete a CreateTopics request.
        public static let topicCreationFailed = Code(.topicCreationFailed)
        /// librdkafka refused to enqueue a record (other than a full queue, which is retried).
        public static let produceFailed = Code(.produceFailed)
        /// `flush` returned with records still waiting for a delivery report.
        public static let flushTimedOut = Code(.flushTimedOut)
        /// Informational: the consumer reached the end of a partition (`offset` is the next one).
        public static let partitionEOF = Code(.partitionEOF)
        /// The consumer needed offsets that the broker no longer has (retention moved the log
        /// start past them); `lostOffsets` is the missing range, which was never delivered.
        public static let offsetsLost = Code(.offsetsLost)
        /// The consumer needed an offset beyond the log end (e.g. the broker restarted empty) and
        /// was reset to the log start: records from `offset` on are delivered again or for the first time.
        public static let offsetRewound = Code(.offsetRewound)
        /// The requested offset is out of range and `auto.offset.reset=error` asked not to reset.
        public static let offsetOutOfRange = Code(.offsetOutOfRange)
        /// Any other per-partition error from a fetch.
        public static let consumeFailed = Code(.consumeFailed)
        /// A client-level error from librdkafka (transport, all brokers down, authentication...).
        /// librdkafka keeps retrying these by itself; they say why data is not flowing.
        public static let client = Code(.client)
        /// A fatal librdkafka error (e.g. idempotent producer state lost): the client is unusable
        /// and must be recreated.
        public static let fatal = Code(.fatal)
        /// The client was used after `close()`.
        public static let closed = Code(.closed)
        /// The embedded broker (librdkafka mock cluster) could not be created or changed.
        public static let embeddedBroker = Code(.embeddedBroker)
        /// The embedded broker could not listen on the requested port.
        public static let listenFailed = Code(.listenFailed)

        public var description: String { base.rawValue }
    }

    /// The kind of error.
    public let code: Code
    /// One line for an operator: the cause and the setting or action to check.
    public let message: String
    /// librdkafka's `rd_kafka_resp_err_t` value, when the error came from librdkafka.
    public let rdkafkaCode: Int32?
    /// The topic concerned, when known.
    public let topic: String?
    /// The partition concerned, when known.
    public let partition: Int32?
    /// The offset concerned, when known (for `.partitionEOF`, the next offset to be written;
    /// for `.offsetsLost` / `.offsetRewound`, the offset actually delivered next).
    public let offset: Int64?
    /// For `.offsetsLost`: the offsets that were needed but are gone.
    public let lostOffsets: Range<Int64>?

    public init(
        _ code: Code, _ message: String, rdkafkaCode: Int32? = nil, topic: String? = nil,
        partition: Int32? = nil, offset: Int64? = nil, lostOffsets: Range<Int64>? = nil
    ) {
        self.code = code
        self.message = message
        self.rdkafkaCode = rdkafkaCode
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.lostOffsets = lostOffsets
    }

    /// librdkafka's symbolic name of `rdkafkaCode` (e.g. `_TRANSPORT`), when there is one.
    public var rdkafkaName: String? {
        rdkafkaCode.map { String(cString: rd_kafka_err2name(rd_kafka_resp_err_t($0))) }
    }

    public var description: String { message }
}

extension KafkaError {
    /// An error from a librdkafka result code, with what we were doing as context.
    static func rdkafka(_ code: Code, _ err: rd_kafka_resp_err_t, _ context: String,
                        topic: String? = nil, partition: Int32? = nil) -> KafkaError {
        let reason = String(cString: rd_kafka_err2str(err))
        return KafkaError(code, "\(context): \(reason)", rdkafkaCode: err.rawValue, topic: topic, partition: partition)
    }
}
