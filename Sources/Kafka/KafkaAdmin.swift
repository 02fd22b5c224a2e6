import CRdKafka
import Foundation
import Logging

/// Topic administration.
public enum KafkaAdmin {
    /// Makes sure `topic` exists with `partitions` partitions and returns its partition count.
    ///
    /// - An existing topic with the same count: returned as is.
    /// - An existing topic with another count: throws `.partitionCountMismatch` (keys would land
    ///   in other partitions than the configuration expects); nothing is changed.
    /// - A missing topic: created with `rd_kafka_CreateTopics` (replication factor: the broker's
    ///   default, which needs Kafka >= 2.4), then awaited in the metadata.
    ///   librdkafka's mock cluster (the embedded broker) does not implement CreateTopics: there
    ///   this throws `.topicCreationFailed` after `timeoutMs`; create the topic with the broker
    ///   (`EmbeddedBroker(topic:partitions:)` / `createTopic`) instead.
    /// - Throws: `KafkaError` `.brokerUnreachable` (naming `bootstrap.servers`),
    ///   `.partitionCountMismatch`, `.topicCreationFailed`, `.timedOut`, `.invalidConfiguration`.
    public static func ensureTopic(
        brokers: String, properties: [String: String], topic: String, partitions: Int32, logger: Logger,
        timeoutMs: Int32 = 10_000
    ) throws -> Int32 {
        guard partitions > 0 else {
            throw KafkaError(.invalidConfiguration, "topic \(topic) needs at least 1 partition, not \(partitions); check the partition count in the configuration", topic: topic)
        }
        let context = KafkaClientContext(logger: logger, role: "admin", collectsErrors: false)
        let handle = try KafkaHandle(type: RD_KAFKA_PRODUCER, brokers: brokers, defaults: [], properties: properties, context: context)
        defer { handle.destroy() }
        try KafkaConnectivity.waitForBroker(handle, timeoutMs: timeoutMs)

        if let existing = try KafkaMetadata.partitionCount(handle, topic: topic, timeoutMs: timeoutMs) {
            guard existing == partitions else {
                throw KafkaError(
                    .partitionCountMismatch,
                    "topic \(topic) on \(handle.bootstrap) has \(existing) partitions but the configuration asks for \(partitions); set the partition count to \(existing), or recreate the topic (keys map to partitions by count)",
                    topic: topic)
            }
            logger.debug("kafka topic exists", metadata: ["topic": "\(topic)", "partitions": "\(existing)"])
            return existing
        }

        try createTopic(handle, topic: topic, partitions: partitions, timeoutMs: timeoutMs)
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        repeat {
            if let created = try KafkaMetadata.partitionCount(handle, topic: topic, timeoutMs: timeoutMs) {
                logger.info("kafka topic created", metadata: ["topic": "\(topic)", "partitions": "\(created)"])
                guard created == partitions else {
                    throw KafkaError(.partitionCountMismatch, "topic \(topic) was created with \(created) partitions instead of \(partitions); check the broker's topic policy", topic: topic)
                }
                return created
            }
            Thread.sleep(forTimeInterval: 0.05)  // metadata propagation on a real cluster
        } while Date() < deadline
        throw KafkaError(.timedOut, "topic \(topic) was created but did not appear in the metadata of \(handle.bootstrap) within \(timeoutMs) ms", topic: topic)
    }

    /// The partition count of `topic`, which must exist: for clients that must not create it
    /// by accident (a broker with `auto.create.topics.enable` would create it with its default
    /// count, and keys would land in other partitions than the cluster expects).
    /// - Throws: `KafkaError` `.unknownTopic` naming the topic and the cluster; the errors of
    ///   `KafkaConnectivity.check` when no broker can be used.
    public static func requireTopic(
        brokers: String, properties: [String: String], topic: String, logger: Logger, timeoutMs: Int32 = 10_000
    ) throws -> Int32 {
        let context = KafkaClientContext(logger: logger, role: "admin", collectsErrors: false)
        let handle = try KafkaHandle(type: RD_KAFKA_PRODUCER, brokers: brokers, defaults: [], properties: properties, context: context)
        defer { handle.destroy() }
        try KafkaConnectivity.waitForBroker(handle, timeoutMs: timeoutMs)
        guard let count = try KafkaMetadata.partitionCount(handle, topic: topic, timeoutMs: timeoutMs) else {
            throw KafkaError(
                .unknownTopic,
                "topic \(topic) does not exist on \(handle.bootstrap) (kafka.topic); check the topic name, or create it with as many partitions as kafka.partitions says",
                topic: topic)
        }
        return count
    }

    private static func createTopic(_ handle: KafkaHandle, topic: String, partitions: Int32, timeoutMs: Int32) throws {
        var errstr = [CChar](repeating: 0, count: 512)
        guard let newTopic = rd_kafka_NewTopic_new(topic, partitions, -1, &errstr, errstr.count) else {
            throw KafkaError(.topicCreationFailed, "cannot describe topic \(topic): \(String(cBuffer: errstr))", topic: topic)
        }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        let options = rd_kafka_AdminOptions_new(handle.pointer, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeoutMs, &errstr, errstr.count)
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMs, &errstr, errstr.count)
        let queue = rd_kafka_queue_new(handle.pointer)
        defer { rd_kafka_queue_destroy(queue) }

        var topics: [OpaquePointer?] = [newTopic]
        rd_kafka_CreateTopics(handle.pointer, &topics, 1, options, queue)
        guard let event = rd_kafka_queue_poll(queue, timeoutMs + 1_000) else {
            throw KafkaError(.topicCreationFailed, "no answer to creating topic \(topic) within \(timeoutMs) ms from \(handle.bootstrap); create it by hand with \(partitions) partitions", topic: topic)
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            let reason = rd_kafka_event_error_string(event).map { String(cString: $0) } ?? String(cString: rd_kafka_err2str(err))
            throw KafkaError(
                .topicCreationFailed,
                "cannot create topic \(topic) with \(partitions) partitions on \(handle.bootstrap): \(reason); the broker may not support CreateTopics (the embedded broker does not: it creates its topic at start), so create the topic there",
                rdkafkaCode: err.rawValue, topic: topic)
        }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count) else { return }
        for index in 0..<count {
            guard let result = results[index] else { continue }
            let topicErr = rd_kafka_topic_result_error(result)
            // Someone else created it meanwhile: the metadata check that follows compares counts.
            if topicErr == RD_KAFKA_RESP_ERR_NO_ERROR || topicErr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS { continue }
            let reason = rd_kafka_topic_result_error_string(result).map { String(cString: $0) } ?? String(cString: rd_kafka_err2str(topicErr))
            throw KafkaError(.topicCreationFailed, "cannot create topic \(topic) with \(partitions) partitions: \(reason)", rdkafkaCode: topicErr.rawValue, topic: topic)
        }
    }
}
