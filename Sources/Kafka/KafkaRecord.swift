/// One consumed record, as a zero-copy view into librdkafka's buffer.
///
/// `key` and `value` are valid only during the `KafkaConsumer.poll` callback that receives the
/// record: copy what must outlive it. A record produced without a key (or with an empty one)
/// has an empty `key`; likewise for `value`.
public struct KafkaRecord {
    /// The partition the record was read from.
    public let partition: Int32
    /// The record's offset in its partition.
    public let offset: Int64
    /// The key bytes (empty when there is none).
    public let key: UnsafeRawBufferPointer
    /// The value bytes (empty when there is none).
    public let value: UnsafeRawBufferPointer
    /// The record timestamp in ms since the epoch (producer create time unless the topic uses
    /// log-append time), or -1 when the broker gave none. This is Kafka's time, not the trade's
    /// event time.
    public let timestampMs: Int64

    /// Makes a record view, e.g. to feed a partition task in a unit test without a broker.
    public init(partition: Int32, offset: Int64, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, timestampMs: Int64) {
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestampMs = timestampMs
    }
}
