import CRdKafka
import Logging

/// A Kafka consumer with manual assignment: the caller (the worker, told by the coordinator)
/// decides which partitions it reads and from which offsets. No consumer-group rebalancing and
/// no offset commits: `group.id` is set only because librdkafka wants one, `enable.auto.commit`
/// is false, and checkpoints (not Kafka) hold the positions.
///
/// Defaults (each overridable through `properties`, passed to librdkafka verbatim):
/// `auto.offset.reset=earliest`, `fetch.wait.max.ms=5` (a Kafka broker answers a waiting fetch
/// as soon as a record arrives anyway; librdkafka's mock cluster holds an empty fetch for the
/// whole wait, so a new record is seen within ~5 ms instead of up to 500 ms: detection latency
/// p50/p99 7/13 ms in `make bench`, against 9/19 ms with 10 ms; the price is ~200 empty fetches
/// a second per broker while idle),
/// `enable.partition.eof=true`, `enable.auto.commit=false`, `enable.auto.offset.store=false`,
/// `group.id=vigil-manual-assign`.
///
/// Retention and resets: if an assigned offset is below the partition's log start (retention
/// removed the records), librdkafka resets the partition to the log start (`earliest`) and the
/// next record's offset jumps forward. `poll` reports such a jump to `onError` as
/// `.offsetsLost` with the missing range before delivering the record, and a jump backwards
/// (requested offset beyond the log end) as `.offsetRewound`. `queryWatermarks` gives the log
/// start (low) to check a position before assigning it.
///
/// Threading: one handle per worker, used from one thread at a time: `assign`, `poll` and `close`
/// must not run concurrently (the class is `@unchecked Sendable` so it can be handed to that
/// thread). Client-level errors raised on librdkafka's threads are queued and handed to the
/// next `poll`'s `onError`.
public final class KafkaConsumer: @unchecked Sendable {
    private let handle: KafkaHandle
    private let queue: OpaquePointer
    private var batch: UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>
    private var batchCapacity: Int
    private var continuity = OffsetContinuity()
    private var assignedTopic: String?
    private var closed = false

    /// Creates the consumer and waits (up to `connectTimeoutMs`) until a broker answers.
    /// - Parameter connectTimeoutMs: nil skips the connectivity check.
    /// - Throws: `KafkaError` `.invalidConfiguration` for a bad property, `.brokerUnreachable`
    ///   naming `bootstrap.servers` when no broker answers, `.authenticationFailed` when the
    ///   broker refuses the SASL credentials, `.tlsFailed` when the TLS handshake fails.
    ///   Secrets (`sasl.password`, `ssl.key.password`, …) never appear in errors or logs.
    public init(brokers: String, properties: [String: String] = [:], logger: Logger, connectTimeoutMs: Int32? = 5_000) throws {
        let context = KafkaClientContext(logger: logger, role: "consumer", collectsErrors: true)
        let handle = try KafkaHandle(
            type: RD_KAFKA_CONSUMER, brokers: brokers,
            defaults: [
                ("group.id", "vigil-manual-assign"),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
                ("fetch.wait.max.ms", "5"),
                ("enable.partition.eof", "true"),
            ],
            properties: properties, context: context)
        if let connectTimeoutMs {
            do {
                try KafkaConnectivity.waitForBroker(handle, timeoutMs: connectTimeoutMs)
            } catch {
                handle.destroy()
                throw error
            }
            _ = context.drainErrors()  // connection noise from before the broker answered
        }
        // From now on client events (errors, logs) come through the consumer queue.
        rd_kafka_poll_set_consumer(handle.pointer)
        guard let queue = rd_kafka_queue_get_consumer(handle.pointer) else {
            handle.destroy()
            throw KafkaError(.invalidConfiguration, "librdkafka gave no consumer queue; set group.id in [kafka.properties]")
        }
        self.handle = handle
        self.queue = queue
        self.batchCapacity = 1024
        self.batch = .allocate(capacity: batchCapacity)
    }

    deinit {
        close()
        batch.deallocate()
    }

    /// Records fetched and waiting in the consumer queue.
    public var queuedRecords: Int { closed ? 0 : rd_kafka_queue_length(queue) }

    /// librdkafka's `queued.min.messages` in effect: fetching pauses while the queue holds this
    /// many records (see `KafkaFetchWaker`).
    public var queuedMinMessages: Int {
        var value = [CChar](repeating: 0, count: 32)
        var size = value.count
        guard rd_kafka_conf_get(rd_kafka_conf(handle.pointer), "queued.min.messages", &value, &size) == RD_KAFKA_CONF_OK else {
            return 100_000
        }
        return Int(String(cBuffer: value)) ?? 100_000
    }

    /// A waker for this consumer's fetching (see `KafkaFetchWaker`); stop it before `close()`.
    public func makeFetchWaker(topic: String) -> KafkaFetchWaker {
        KafkaFetchWaker(handle: handle, topic: topic)
    }

    /// Replaces the whole assignment with `partitions` of `topic`; each starts at its offset
    /// (>= 0) or at `KafkaOffset.beginning` / `.end`. An empty list stops all fetching.
    /// Records already fetched for partitions no longer assigned are discarded by librdkafka.
    /// - Throws: `KafkaError` `.client` if librdkafka refuses the assignment, `.closed`.
    public func assign(topic: String, partitions: [(partition: Int32, offset: Int64)]) throws {
        guard !closed else { throw KafkaError(.closed, "assign on a closed KafkaConsumer", topic: topic) }
        let err: rd_kafka_resp_err_t
        if partitions.isEmpty {
            err = rd_kafka_assign(handle.pointer, nil)
        } else {
            let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))
            defer { rd_kafka_topic_partition_list_destroy(list) }
            for (partition, offset) in partitions {
                rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = offset
            }
            err = rd_kafka_assign(handle.pointer, list)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.rdkafka(.client, err, "cannot assign \(partitions.count) partitions of \(topic)", topic: topic)
        }
        continuity.assign(partitions)
        assignedTopic = topic
    }

    /// Takes up to `max` records from the consumer queue (waiting up to `timeoutMs` for the
    /// first), calls `body` for each with a zero-copy view valid only during the call, then
    /// frees them. Returns the number of records passed to `body`.
    ///
    /// Everything else the broker or librdkafka reports goes to `onError`, in order with the
    /// records: `.partitionEOF` (caught up: informational), `.offsetsLost` / `.offsetRewound`
    /// (position jumps, see the type's documentation), fetch errors, and client-level errors
    /// such as all brokers down (librdkafka keeps retrying those by itself).
    public func poll(max: Int, timeoutMs: Int32, _ body: (KafkaRecord) -> Void, onError: (KafkaError) -> Void) -> Int {
        guard !closed, max > 0 else { return 0 }
        if max > batchCapacity {
            batch.deallocate()
            batchCapacity = max
            batch = .allocate(capacity: max)
        }
        // rd_kafka_consume_batch_queue waits until the batch is full or the timeout passes, so
        // a blocking call would hold records that are already here for up to `timeoutMs`. Take
        // what is queued without waiting; only on an empty queue wait, for one record, then
        // take whatever else has arrived with it.
        var count = rd_kafka_consume_batch_queue(queue, 0, batch, max)
        if count == 0 && timeoutMs != 0 {
            count = rd_kafka_consume_batch_queue(queue, timeoutMs, batch, 1)
            if count == 1 && max > 1 {
                let more = rd_kafka_consume_batch_queue(queue, 0, batch + 1, max - 1)
                if more > 0 { count += more }
            }
        }
        if count < 0 {
            onError(KafkaError.rdkafka(.consumeFailed, rd_kafka_last_error(), "cannot read the consumer queue"))
        }
        var delivered = 0
        for index in 0..<Swift.max(count, 0) {
            guard let message = batch[index] else { continue }
            defer { rd_kafka_message_destroy(message) }
            let m = message.pointee
            if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                onError(messageError(message))
                continue
            }
            switch continuity.observe(partition: m.partition, offset: m.offset) {
            case .inOrder:
                break
            case .skipped(let lost):
                onError(KafkaError(
                    .offsetsLost,
                    "\(topicName(message)) [\(m.partition)]: offsets \(lost.lowerBound)..<\(lost.upperBound) (\(lost.count) records) are no longer on the broker (retention moved the log start to \(m.offset) before they were read); they were not delivered",
                    topic: topicName(message), partition: m.partition, offset: m.offset, lostOffsets: lost))
            case .rewound(let expected):
                onError(KafkaError(
                    .offsetRewound,
                    "\(topicName(message)) [\(m.partition)]: expected offset \(expected) but got \(m.offset): the requested offset was beyond the log end (broker restarted or topic recreated?) and auto.offset.reset moved the consumer back",
                    topic: topicName(message), partition: m.partition, offset: m.offset))
            }
            var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let timestamp = rd_kafka_message_timestamp(message, &timestampType)
            body(KafkaRecord(
                partition: m.partition, offset: m.offset,
                key: UnsafeRawBufferPointer(start: m.key, count: m.key == nil ? 0 : m.key_len),
                value: UnsafeRawBufferPointer(start: m.payload, count: m.payload == nil ? 0 : m.len),
                timestampMs: timestamp))
            delivered += 1
        }
        for error in handle.context.drainErrors() {
            onError(error)
        }
        return delivered
    }

    /// The low/high watermarks librdkafka cached from the last fetch response of the partition
    /// (no network; nil before the first fetch). `high` is the next offset to be written; `low`
    /// the log start as last reported by the broker.
    public func cachedWatermarks(topic: String, partition: Int32) -> (low: Int64, high: Int64)? {
        guard !closed else { return nil }
        var low: Int64 = -1
        var high: Int64 = -1
        let err = rd_kafka_get_watermark_offsets(handle.pointer, topic, partition, &low, &high)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, low >= 0, high >= 0 else { return nil }
        return (low, high)
    }

    /// Asks the partition leader for the current low/high watermarks (blocks up to `timeoutMs`).
    /// `low` is the log start: an offset below it is gone.
    /// - Throws: `KafkaError` `.unknownTopic`, `.timedOut`, `.client`, `.closed`.
    public func queryWatermarks(topic: String, partition: Int32, timeoutMs: Int32) throws -> (low: Int64, high: Int64) {
        guard !closed else { throw KafkaError(.closed, "queryWatermarks on a closed KafkaConsumer", topic: topic) }
        var low: Int64 = -1
        var high: Int64 = -1
        let err = rd_kafka_query_watermark_offsets(handle.pointer, topic, partition, &low, &high, timeoutMs)
        switch err {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
            return (low, high)
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
            throw KafkaError.rdkafka(.unknownTopic, err, "cannot query watermarks of \(topic) [\(partition)] on \(handle.bootstrap)", topic: topic, partition: partition)
        case RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__TRANSPORT:
            throw KafkaError.rdkafka(.timedOut, err, "no watermarks for \(topic) [\(partition)] from \(handle.bootstrap) (bootstrap.servers) within \(timeoutMs) ms", topic: topic, partition: partition)
        default:
            throw KafkaError.rdkafka(.client, err, "cannot query watermarks of \(topic) [\(partition)]", topic: topic, partition: partition)
        }
    }

    /// The number of partitions of `topic` (a metadata request; blocks up to `timeoutMs`).
    /// - Throws: `KafkaError` `.unknownTopic` when the cluster does not have it, `.timedOut`, `.closed`.
    public func partitionCount(topic: String, timeoutMs: Int32) throws -> Int32 {
        guard !closed else { throw KafkaError(.closed, "partitionCount on a closed KafkaConsumer", topic: topic) }
        guard let count = try KafkaMetadata.partitionCount(handle, topic: topic, timeoutMs: timeoutMs) else {
            throw KafkaError(.unknownTopic, "topic \(topic) does not exist on \(handle.bootstrap) (bootstrap.servers); create it or check the topic name", topic: topic)
        }
        return count
    }

    /// Stops fetching and destroys the client. Idempotent; later calls to `poll` return 0 and the
    /// others throw `.closed`. Must happen before the embedded broker shuts down.
    public func close() {
        guard !closed else { return }
        closed = true
        let err = rd_kafka_consumer_close(handle.pointer)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            handle.context.logger.debug("kafka consumer close: \(String(cString: rd_kafka_err2str(err)))")
        }
        rd_kafka_queue_destroy(queue)
        handle.destroy()
    }

    private func topicName(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> String {
        message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? assignedTopic ?? "?"
    }

    private func messageError(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaError {
        let m = message.pointee
        let topic = topicName(message)
        let reason = rd_kafka_message_errstr(message).map { String(cString: $0) } ?? String(cString: rd_kafka_err2str(m.err))
        let code: KafkaError.Code
        let text: String
        switch m.err {
        case RD_KAFKA_RESP_ERR__PARTITION_EOF:
            code = .partitionEOF
            text = "\(topic) [\(m.partition)] caught up: end of partition at offset \(m.offset)"
        case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET, RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
            code = .offsetOutOfRange
            text = "\(topic) [\(m.partition)]: offset \(m.offset) is out of range and not reset (auto.offset.reset): \(reason)"
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
            code = .unknownTopic
            text = "\(topic) [\(m.partition)]: \(reason); check the topic name and that it exists"
        case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
            code = .unknownPartition
            text = "\(topic) [\(m.partition)]: \(reason); the topic has fewer partitions than assigned"
        default:
            code = .consumeFailed
            text = "\(topic) [\(m.partition)]: \(reason)"
        }
        return KafkaError(code, text, rdkafkaCode: m.err.rawValue, topic: topic, partition: m.partition, offset: m.offset)
    }
}
