import Foundation
import Kafka
import XCTest

import Ingest

/// The ingestor against the embedded broker, with real librdkafka clients on both ends.
final class IngestKafkaTests: KafkaTestCase {
    /// Consumes every partition of `topic` from the start until `expected` records arrived.
    func consumeAll(_ broker: EmbeddedBroker, topic: String, partitions: Int32, expected: Int) throws -> [ConsumedRecord] {
        let consumer = try KafkaConsumer(brokers: broker.bootstrap, logger: logger)
        defer { consumer.close() }
        try consumer.assign(topic: topic, partitions: (0..<partitions).map { (partition: $0, offset: KafkaOffset.beginning) })
        var records: [ConsumedRecord] = []
        consume(consumer, awaiting: "\(expected) records on \(topic)", timeout: 30, until: { records.count >= expected },
                record: { records.append(ConsumedRecord($0)) },
                error: { error in if error.code != .partitionEOF { XCTFail("consumer: \(error)") } })
        var total: Int64 = 0
        for partition in 0..<partitions {
            total += try consumer.queryWatermarks(topic: topic, partition: partition, timeoutMs: 5_000).high
        }
        XCTAssertEqual(total, Int64(expected), "the topic holds exactly the records produced, no duplicates")
        return records
    }

    func testReplayingTheSpotRecordingDeliversEveryTradeOnceKeyedBySymbol() async throws {
        let partitions: Int32 = 4
        let broker = try EmbeddedBroker(topic: "trades", partitions: partitions, logger: logger)
        defer { broker.shutdown() }
        let spot = IngestTestSupport.realTrades("real_trades_hftbacktest_spot.jsonl")

        let producer = try KafkaProducer(brokers: broker.bootstrap, logger: logger)
        var source = try ReplaySource(path: spot.path)
        let report = try await Ingestor(pacing: .max, logger: logger)
            .run(&source, into: KafkaSink(producer: producer, topic: "trades"))
        producer.close()
        XCTAssertEqual(report.produced, 34_419)
        XCTAssertEqual(report.delivered, 34_419)
        XCTAssertEqual(report.failed, 0)
        XCTAssertEqual(report.pending, 0)
        XCTAssertNil(report.deliveryError)

        let records = try consumeAll(broker, topic: "trades", partitions: partitions, expected: 34_419)
        let lines = try String(contentsOf: spot, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(records.count, lines.count)
        XCTAssertEqual(records.map(\.valueString).sorted(), lines.sorted(), "every line arrives exactly once")
        for record in records {
            XCTAssertTrue(record.valueString.contains(#""s":"\#(record.keyString)""#), "key is the record's symbol")
            XCTAssertEqual(record.partition, JavaPartitioner.partition(forKey: record.key, partitionCount: partitions))
        }
        // Per symbol, the topic keeps the file's order.
        for symbol in ["BTCUSDT", "ETHUSDT"] {
            let consumed = records.filter { $0.keyString == symbol }.sorted { $0.offset < $1.offset }.map(\.valueString)
            XCTAssertEqual(consumed, lines.filter { $0.contains(#""s":"\#(symbol)""#) }, symbol)
        }
    }

    func testTheSimulatorFeedsTheBrokerKeyedBySymbol() async throws {
        let partitions: Int32 = 6
        let broker = try EmbeddedBroker(topic: "simulated", partitions: partitions, logger: logger)
        defer { broker.shutdown() }
        var config = SimulatorConfig()
        config.tradesPerSecond = 20
        config.durationMs = 30 * 60_000
        var simulator = try MarketSimulator(config: config)

        let producer = try KafkaProducer(brokers: broker.bootstrap, logger: logger)
        let report = try await Ingestor(pacing: .max, logger: logger)
            .run(&simulator, into: KafkaSink(producer: producer, topic: "simulated"))
        producer.close()
        XCTAssertEqual(report.delivered, report.produced)
        XCTAssertEqual(report.labels.count, 6)

        let records = try consumeAll(broker, topic: "simulated", partitions: partitions, expected: report.produced)
        var perSymbol: [String: Int] = [:]
        for record in records { perSymbol[record.keyString, default: 0] += 1 }
        XCTAssertEqual(perSymbol, report.perSymbol)
        XCTAssertEqual(Set(perSymbol.keys), Set(SymbolProfile.defaults.map(\.symbol)))
    }
}
