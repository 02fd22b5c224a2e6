import CRdKafka

/// Topic metadata through a full-cluster request.
///
/// Asking for one topic by name would make many brokers (and librdkafka's mock cluster, which
/// ignores `allow.auto.create.topics=false`) auto-create it with a default partition count;
/// listing all topics never creates one.
enum KafkaMetadata {
    /// The partition count of `topic`, or nil when the cluster does not have it.
    static func partitionCount(_ handle: KafkaHandle, topic: String, timeoutMs: Int32) throws -> Int32? {
        try withTopic(handle, topic: topic, timeoutMs: timeoutMs) { $0.partition_cnt }
    }

    /// The leader broker of each partition of `topic`, or nil when the cluster does not have it.
    static func leaders(_ handle: KafkaHandle, topic: String, timeoutMs: Int32) throws -> [Int32: Int32]? {
        try withTopic(handle, topic: topic, timeoutMs: timeoutMs) { entry in
            let partitions = UnsafeBufferPointer(start: entry.partitions, count: Int(entry.partition_cnt))
            return Dictionary(partitions.map { ($0.id, $0.leader) }, uniquingKeysWith: { first, _ in first })
        }
    }

    private static func withTopic<T>(
        _ handle: KafkaHandle, topic: String, timeoutMs: Int32, _ body: (rd_kafka_metadata_topic) -> T
    ) throws -> T? {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle.pointer, 1, nil, &metadata, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            let code: KafkaError.Code = err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT ? .timedOut : .client
            throw KafkaError.rdkafka(code, err, "metadata request to \(handle.bootstrap) (bootstrap.servers) failed after at most \(timeoutMs) ms", topic: topic)
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        let topics = UnsafeBufferPointer(start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
        guard let entry = topics.first(where: { String(cString: $0.topic) == topic }) else { return nil }
        if entry.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART { return nil }
        if entry.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.rdkafka(.client, entry.err, "metadata for topic \(topic) has an error", topic: topic)
        }
        return body(entry)
    }
}
