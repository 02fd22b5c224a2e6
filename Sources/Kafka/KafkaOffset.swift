/// Logical start positions for `KafkaConsumer.assign`, besides a concrete offset (>= 0).
public enum KafkaOffset {
    /// The first offset the broker still has (the log start, which retention moves forward).
    public static let beginning: Int64 = -2  // RD_KAFKA_OFFSET_BEGINNING
    /// The next offset to be written: only records produced after the assignment are delivered.
    public static let end: Int64 = -1  // RD_KAFKA_OFFSET_END
}
