import Kafka
import XCTest

/// Round trips through the embedded broker with real librdkafka clients.
final class ProduceConsumeTests: KafkaTestCase {
    func testKeyedRecordsRoundTripWithExactOffsetsPayloadsAndMurmur2Partitions() throws {
        let partitions: Int32 = 4
        let broker = try EmbeddedBroker(topic: "trades", partitions: partitions, logger: logger)
        defer { broker.shutdown() }

        let count = 2_000
        let producer = try KafkaProducer(brokers: broker.bootstrap, logger: logger)
        for i in 0..<count {
            try producer.produce(topic: "trades", key: Array("symbol-\(i % 500)".utf8), value: Array("value-\(i)".utf8))
        }
        let counts = try producer.flush(timeoutMs: 10_000)
        XCTAssertEqual(counts, DeliveryCounts(enqueued: count, delivered: count, failed: 0, firstError: nil))
        producer.close()

        let consumer = try KafkaConsumer(brokers: broker.bootstrap, logger: logger)
        defer { consumer.close() }
        XCTAssertEqual(try consumer.partitionCount(topic: "trades", timeoutMs: 5_000), partitions)
        try consumer.assign(topic: "trades", partitions: (0..<partitions).map { (partition: $0, offset: 0) })
        var records: [ConsumedRecord] = []
        var unexpected: [KafkaError] = []
        consume(consumer, awaiting: "\(count) records", until: { records.count >= count }, record: { records.append(ConsumedRecord($0)) }, error: { error in
            if error.code != .partitionEOF { unexpected.append(error) }
        })
        XCTAssertEqual(records.count, count)
        XCTAssertEqual(unexpected.map(\.message), [])

        var byPartition: [Int32: [ConsumedRecord]] = [:]
        for record in records { byPartition[record.partition, default: []].append(record) }
        for (partition, list) in byPartition {
            XCTAssertEqual(list.map(\.offset), (0..<Int64(list.count)).map { $0 }, "partition \(partition) offsets are dense from 0")
            let marks = try consumer.queryWatermarks(topic: "trades", partition: partition, timeoutMs: 5_000)
            XCTAssertEqual(marks.low, 0)
            XCTAssertEqual(marks.high, Int64(list.count))
            XCTAssertEqual(consumer.cachedWatermarks(topic: "trades", partition: partition)?.high, Int64(list.count))
        }
        XCTAssertGreaterThan(byPartition.count, 1, "500 keys spread over several partitions")
        for record in records {
            XCTAssertEqual(record.partition, JavaPartitioner.partition(forKey: record.key, partitionCount: partitions), "key \(record.keyString)")
        }
        // Per key, values arrive in production order; overall every value arrives once.
        var lastIndexByKey: [String: Int] = [:]
        for record in records {
            let index = Int(record.valueString.dropFirst("value-".count))!
            XCTAssertEqual(record.keyString, "symbol-\(index % 500)")
            if let previous = lastIndexByKey[record.keyString] { XCTAssertLessThan(previous, index) }
            lastIndexByKey[record.keyString] = index
        }
        XCTAssertEqual(Set(records.map(\.valueString)), Set((0..<count).map { "value-\($0)" }))
    }

    func testAssignFromMiddleOffsetDeliversTheRestThenReportsEndOfPartition() throws {
        let broker = try EmbeddedBroker(topic: "middle", partitions: 1, logger: logger)
        defer { broker.shutdown() }
        let producer = try KafkaProducer(brokers: broker.bootstrap, logger: logger)
        for i in 0..<100 {
            try producer.produce(topic: "middle", key: Array("k".utf8), value: Array("v\(i)".utf8), partition: 0)
        }
        XCTAssertEqual(try producer.flush(timeoutMs: 10_000).delivered, 100)
        producer.close()

        let consumer = try KafkaConsumer(brokers: broker.bootstrap, logger: logger)
        defer { consumer.close() }
        try consumer.assign(topic: "middle", partitions: [(partition: 0, offset: 40)])
        var records: [ConsumedRecord] = []
        var endOffset: Int64?
        consume(consumer, awaiting: "records 40..<100 and end of partition", until: { endOffset != nil && records.count >= 60 }, record: {
            records.append(ConsumedRecord($0))
        }, error: { error in
            XCTAssertEqual(error.code, .partitionEOF, error.message)
            endOffset = error.offset
        })
        XCTAssertEqual(records.map(\.offset), Array(40..<100))
        XCTAssertEqual(records.map(\.valueString), (40..<100).map { "v\($0)" })
        XCTAssertEqual(endOffset, 100)
    }

    func testTwoTopicsStaySeparateAndReassignSwitchesTopic() throws {
        let broker = try EmbeddedBroker(topic: "alpha", partitions: 2, logger: logger)
        defer { broker.shutdown() }
        try broker.createTopic("beta", partitions: 3)
        XCTAssertThrowsError(try broker.createTopic("beta", partitions: 3)) { error in
            XCTAssertEqual((error as? KafkaError)?.code, .embeddedBroker)
        }

        let producer = try KafkaProducer(brokers: broker.bootstrap, logger: logger)
        for i in 0..<50 {
            try producer.produce(topic: "alpha", key: Array("a\(i)".utf8), value: Array("alpha-\(i)".utf8))
            try producer.produce(topic: "beta", key: Array("b\(i)".utf8), value: Array("beta-\(i)".utf8))
        }
        XCTAssertEqual(try producer.flush(timeoutMs: 10_000).delivered, 100)
        producer.close()

        let consumer = try KafkaConsumer(brokers: broker.bootstrap, logger: logger)
        defer { consumer.close() }
        XCTAssertEqual(try consumer.partitionCount(topic: "beta", timeoutMs: 5_000), 3)
        for (topic, partitions) in [("alpha", Int32(2)), ("beta", Int32(3))] {
            try consumer.assign(topic: topic, partitions: (0..<partitions).map { (partition: $0, offset: KafkaOffset.beginning) })
            var values: [String] = []
            consume(consumer, awaiting: "50 records of \(topic)", until: { values.count >= 50 }, record: {
                values.append(ConsumedRecord($0).valueString)
            })
            XCTAssertEqual(Set(values), Set((0..<50).map { "\(topic)-\($0)" }))
        }
    }
}
