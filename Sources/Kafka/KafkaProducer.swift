import CRdKafka
import Logging
import Synchronization

/// Delivery totals of a producer since it was created.
public struct DeliveryCounts: Sendable, Equatable {
    /// Records accepted into librdkafka's local queue.
    public var enqueued: Int
    /// Records the broker acknowledged (with `acks=all`: written to every in-sync replica).
    public var delivered: Int
    /// Records that failed for good (e.g. `message.timeout.ms` passed while the broker was down).
    public var failed: Int
    /// The first failure, e.g. `record to trades [3] not delivered: Local: Message timed out`.
    public var firstError: String?

    /// Records still waiting for a delivery report.
    public var pending: Int { enqueued - delivered - failed }

    public init(enqueued: Int = 0, delivered: Int = 0, failed: Int = 0, firstError: String? = nil) {
        self.enqueued = enqueued
        self.delivered = delivered
        self.failed = failed
        self.firstError = firstError
    }
}

/// A Kafka producer of keyed records.
///
/// Defaults (each overridable through `properties`, which pass to librdkafka verbatim):
/// `partitioner=murmur2_random` (the Java client's partitioner: a key always lands in
/// `murmur2(key) % partitions`; records without a key go to a random partition),
/// `compression.codec=lz4`, `linger.ms=5`, `acks=all`, `enable.idempotence=true` (librdkafka's
/// mock cluster supports it, so the embedded broker needs no fallback).
///
/// Thread safety: `produce` and `counts` may be called from any thread; `flush` and `close` from
/// one thread at a time, and `close` only once nothing else uses the producer. Delivery reports
/// are counted during `produce`, `flush` and `poll`, on the calling thread.
public final class KafkaProducer: Sendable {
    private let handle: KafkaHandle
    private let topics = Mutex<[String: TopicHandle]>([:])
    private let sinceLastPoll = Atomic<Int>(0)

    /// Creates the producer and waits (up to `connectTimeoutMs`) until a broker answers.
    /// - Parameter connectTimeoutMs: nil skips the connectivity check.
    /// - Throws: `KafkaError` `.invalidConfiguration` for a bad property, `.brokerUnreachable`
    ///   naming `bootstrap.servers` when no broker answers, `.authenticationFailed` when the
    ///   broker refuses the SASL credentials, `.tlsFailed` when the TLS handshake fails.
    ///   Secrets (`sasl.password`, `ssl.key.password`, …) never appear in errors or logs.
    public init(brokers: String, properties: [String: String] = [:], logger: Logger, connectTimeoutMs: Int32? = 5_000) throws {
        let context = KafkaClientContext(logger: logger, role: "producer", collectsErrors: false)
        handle = try KafkaHandle(
            type: RD_KAFKA_PRODUCER, brokers: brokers,
            defaults: [
                ("partitioner", "murmur2_random"),
                ("compression.codec", "lz4"),
                ("linger.ms", "5"),
                ("acks", "all"),
                ("enable.idempotence", "true"),
            ],
            properties: properties, context: context, deliveryReports: true)
        if let connectTimeoutMs {
            do {
                try KafkaConnectivity.waitForBroker(handle, timeoutMs: connectTimeoutMs)
            } catch {
                handle.destroy()
                throw error
            }
        }
    }

    deinit { close() }

    /// Enqueues one record (key and value are copied).
    ///
    /// When librdkafka's local queue is full (`queue.buffering.max.messages`/`.kbytes`), it polls
    /// for delivery reports and retries until there is room: backpressure, never a drop. So a
    /// broker that stays down blocks the caller once the queue is full.
    /// An empty key is sent as a null key (random partition); `partition` -1 lets the partitioner choose.
    /// - Throws: `KafkaError` `.produceFailed` (e.g. unknown partition, record too large),
    ///   `.fatal` (the producer must be recreated), `.closed`.
    public func produce(topic: String, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, partition: Int32 = -1) throws {
        let rkt = try topicHandle(topic)
        let keyPointer = key.isEmpty ? nil : key.baseAddress
        let valuePointer = value.isEmpty ? nil : UnsafeMutableRawPointer(mutating: value.baseAddress)
        while rd_kafka_produce(rkt, partition, RD_KAFKA_MSG_F_COPY, valuePointer, value.count, keyPointer, key.count, nil) != 0 {
            let err = rd_kafka_last_error()
            guard err == RD_KAFKA_RESP_ERR__QUEUE_FULL else { throw produceError(err, topic: topic, partition: partition) }
            rd_kafka_poll(handle.pointer, 10)
        }
        handle.context.deliveries.withLock { $0.enqueued += 1 }
        // Serve delivery reports now and then, so `counts` stays current without a full queue.
        if sinceLastPoll.wrappingAdd(1, ordering: .relaxed).newValue & 1023 == 0 {
            rd_kafka_poll(handle.pointer, 0)
        }
    }

    /// Convenience for `produce(topic:key:value:partition:)` with byte arrays.
    public func produce(topic: String, key: [UInt8], value: [UInt8], partition: Int32 = -1) throws {
        try key.withUnsafeBytes { key in
            try value.withUnsafeBytes { value in
                try produce(topic: topic, key: key, value: value, partition: partition)
            }
        }
    }

    /// Serves pending delivery reports and client events, waiting up to `timeoutMs` for one.
    public func poll(timeoutMs: Int32 = 0) {
        guard !handle.isDestroyed else { return }
        rd_kafka_poll(handle.pointer, timeoutMs)
    }

    /// Waits until every enqueued record has a delivery report, or `timeoutMs` passes.
    ///
    /// Returns the totals (check `failed`/`firstError`: records can fail for good, e.g. after
    /// `message.timeout.ms`). Records still pending after the timeout stay queued and are sent
    /// when the broker comes back; a later `flush` reports them.
    /// - Throws: `KafkaError` `.flushTimedOut` naming how many records are pending and the last
    ///   connection error (e.g. the broker is unreachable), `.closed`.
    @discardableResult
    public func flush(timeoutMs: Int32) throws -> DeliveryCounts {
        guard !handle.isDestroyed else { throw KafkaError(.closed, "flush on a closed KafkaProducer") }
        let err = rd_kafka_flush(handle.pointer, timeoutMs)
        let counts = self.counts
        if err == RD_KAFKA_RESP_ERR__TIMED_OUT {
            let waiting = rd_kafka_outq_len(handle.pointer)
            let cause = handle.context.health.withLock { $0.lastConnectionError }
                .map { "last connection error: \($0)" } ?? "the broker is slow or unreachable"
            throw KafkaError(
                .flushTimedOut,
                "\(waiting) records/requests still undelivered after \(timeoutMs) ms to \(handle.bootstrap) (bootstrap.servers); \(cause)",
                rdkafkaCode: err.rawValue)
        }
        return counts
    }

    /// Delivery totals so far (reports are counted when the producer is polled or flushed).
    public var counts: DeliveryCounts {
        let state = handle.context.deliveries.withLock { $0 }
        return DeliveryCounts(enqueued: state.enqueued, delivered: state.delivered, failed: state.failed, firstError: state.firstError)
    }

    /// Destroys the producer without flushing: call `flush` first, or pending records are lost
    /// (the count is logged). Idempotent. Must happen before the embedded broker shuts down.
    public func close() {
        guard !handle.isDestroyed else { return }
        let pending = rd_kafka_outq_len(handle.pointer)
        if pending > 0 {
            handle.context.logger.info("closing kafka producer with \(pending) undelivered records/requests; flush first to keep them")
        }
        topics.withLock { topics in
            for topic in topics.values { rd_kafka_topic_destroy(topic.pointer) }
            topics.removeAll()
        }
        handle.destroy()
    }

    private func topicHandle(_ name: String) throws -> OpaquePointer {
        try topics.withLock { topics in
            if let existing = topics[name] { return existing.pointer }
            guard !handle.isDestroyed else { throw KafkaError(.closed, "produce on a closed KafkaProducer", topic: name) }
            guard let rkt = rd_kafka_topic_new(handle.pointer, name, nil) else {
                throw KafkaError.rdkafka(.produceFailed, rd_kafka_last_error(), "cannot open topic \(name)", topic: name)
            }
            topics[name] = TopicHandle(pointer: rkt)
            return rkt
        }
    }

    private func produceError(_ err: rd_kafka_resp_err_t, topic: String, partition: Int32) -> KafkaError {
        if err == RD_KAFKA_RESP_ERR__FATAL {
            var buffer = [CChar](repeating: 0, count: 512)
            _ = rd_kafka_fatal_error(handle.pointer, &buffer, buffer.count)
            return KafkaError(.fatal, "kafka producer failed for good: \(String(cBuffer: buffer)); recreate the producer", rdkafkaCode: err.rawValue, topic: topic)
        }
        let target = partition < 0 ? topic : "\(topic) [\(partition)]"
        return KafkaError.rdkafka(.produceFailed, err, "cannot produce to \(target)", topic: topic, partition: partition < 0 ? nil : partition)
    }
}

/// An `rd_kafka_topic_t`, owned by one producer and destroyed before its client.
private struct TopicHandle: @unchecked Sendable {  // librdkafka topic handles are thread-safe
    let pointer: OpaquePointer
}
