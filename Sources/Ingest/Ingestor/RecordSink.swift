import Kafka

/// Where an `Ingestor` sends records: a Kafka topic (`KafkaSink`) or a file (`LineFileWriter`).
public protocol RecordSink {
    /// Hands over one record; the bytes are copied before returning. May block while the sink
    /// is full (backpressure), never drops.
    func send(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws
    /// Serves delivery reports without waiting; called between records and before pacing waits.
    func poll()
    /// Waits up to `timeoutMs` for everything sent to be delivered, and returns the totals.
    /// Never throws: a failure to finish is reported in `DeliveryReport.error`.
    func finish(timeoutMs: Int32) -> DeliveryReport
}

/// Delivery totals of a sink after `finish`.
public struct DeliveryReport: Sendable, Equatable {
    /// Records the destination acknowledged (Kafka: written to every in-sync replica).
    public var delivered: Int
    /// Records that failed for good.
    public var failed: Int
    /// Records still unacknowledged when `finish` gave up waiting; they may still arrive.
    public var pending: Int
    /// The first delivery failure, or why finishing failed (e.g. the broker is unreachable).
    public var error: String?

    public init(delivered: Int, failed: Int, pending: Int, error: String? = nil) {
        self.delivered = delivered
        self.failed = failed
        self.pending = pending
        self.error = error
    }
}

/// Produces records to one Kafka topic, keyed as given; librdkafka's configured partitioner
/// (`murmur2_random` by default in `KafkaProducer`) picks the partition from the key.
public struct KafkaSink: RecordSink, Sendable {
    public let producer: KafkaProducer
    public let topic: String

    public init(producer: KafkaProducer, topic: String) {
        self.producer = producer
        self.topic = topic
    }

    public func send(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws {
        try producer.produce(topic: topic, key: key, value: value)
    }

    public func poll() { producer.poll(timeoutMs: 0) }

    public func finish(timeoutMs: Int32) -> DeliveryReport {
        do {
            let counts = try producer.flush(timeoutMs: timeoutMs)
            return DeliveryReport(delivered: counts.delivered, failed: counts.failed, pending: counts.pending, error: counts.firstError)
        } catch {
            let counts = producer.counts
            return DeliveryReport(delivered: counts.delivered, failed: counts.failed, pending: counts.pending,
                                  error: counts.firstError ?? "\(error)")
        }
    }
}

/// Writes each record's value as one line (the key is implied by the line); "delivered" means
/// written to the file.
extension LineFileWriter: RecordSink {
    public func send(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws {
        try writeLine(value)
    }

    public func poll() {}

    public func finish(timeoutMs: Int32) -> DeliveryReport {
        do {
            try flush()
            return DeliveryReport(delivered: linesWritten, failed: 0, pending: 0)
        } catch {
            return DeliveryReport(delivered: linesFlushed, failed: linesWritten - linesFlushed, pending: 0, error: "\(error)")
        }
    }
}
