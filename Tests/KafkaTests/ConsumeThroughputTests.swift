import Foundation
import Kafka
import XCTest

/// Real Binance trades through the embedded broker: checks order and completeness, and prints
/// the raw consume rate (a measurement, not a timed assertion). For numbers that mean something,
/// run it in a release build: `swift test -c release --filter ConsumeThroughputTests`.
final class ConsumeThroughputTests: KafkaTestCase {
    func testRealTradesKeyedBySymbolArriveInOrderAndMeasureConsumeRate() throws {
        let trades = try Self.loadRealTrades(["real_trades_hftbacktest_spot.jsonl", "real_trades_hftbacktest_usdm.jsonl"])
        XCTAssertGreaterThan(trades.count, 60_000)
        let partitions: Int32 = 4
        let broker = try EmbeddedBroker(topic: "bench", partitions: partitions, logger: logger)
        defer { broker.shutdown() }

        let producer = try KafkaProducer(brokers: broker.bootstrap, logger: logger)
        let produceStart = Date()
        for trade in trades {
            try producer.produce(topic: "bench", key: trade.symbol, value: trade.line)
        }
        XCTAssertEqual(try producer.flush(timeoutMs: 30_000).delivered, trades.count)
        let produceSeconds = Date().timeIntervalSince(produceStart)
        producer.close()

        let consumer = try KafkaConsumer(brokers: broker.bootstrap, logger: logger)
        defer { consumer.close() }
        var rounds: [String] = []
        for round in 1...3 {
            try consumer.assign(topic: "bench", partitions: (0..<partitions).map { (partition: $0, offset: 0) })
            let assigned = Date()
            var firstRecordAt: Date?
            var received = 0
            var bytes = 0
            var nextOffset = [Int64](repeating: 0, count: Int(partitions))
            var linesBySymbol: [[UInt8]: [[UInt8]]] = [:]
            let deadline = assigned.addingTimeInterval(30)
            while received < trades.count, Date() < deadline {
                _ = consumer.poll(max: 8192, timeoutMs: 100, { record in
                    if firstRecordAt == nil { firstRecordAt = Date() }
                    received += 1
                    bytes += record.value.count
                    if nextOffset[Int(record.partition)] == record.offset { nextOffset[Int(record.partition)] += 1 }
                    if round == 1 { linesBySymbol[Array(record.key), default: []].append(Array(record.value)) }
                }, onError: { error in
                    if error.code != .partitionEOF { XCTFail("unexpected \(error)") }
                })
            }
            let finished = Date()
            XCTAssertEqual(received, trades.count, "round \(round)")
            XCTAssertEqual(nextOffset.reduce(0, +), Int64(trades.count), "offsets dense from 0 in every partition")
            if round == 1 {
                let expected = Dictionary(grouping: trades, by: \.symbol).mapValues { $0.map(\.line) }
                XCTAssertEqual(linesBySymbol, expected, "each symbol's trades arrive in file order")
            }
            let first = firstRecordAt ?? finished
            let seconds = max(finished.timeIntervalSince(first), 1e-6)
            rounds.append(String(
                format: "round %d: %d records (%.1f MB) in %.0f ms = %.2f M records/s; assign to first record %.0f ms",
                round, received, Double(bytes) / 1e6, seconds * 1e3, Double(received) / seconds / 1e6, first.timeIntervalSince(assigned) * 1e3))
        }
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        print("Kafka throughput (\(build) build, embedded broker, real trades ~\(trades.map(\.line.count).reduce(0, +) / trades.count) B):")
        print(String(format: "  produce: %d records in %.0f ms = %.2f M records/s (incl. flush)", trades.count, produceSeconds * 1e3, Double(trades.count) / produceSeconds / 1e6))
        rounds.forEach { print("  consume \($0)") }
    }

    private struct Trade {
        var symbol: [UInt8]
        var line: [UInt8]
    }

    private static func loadRealTrades(_ names: [String]) throws -> [Trade] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var trades: [Trade] = []
        for name in names {
            let url = root.appendingPathComponent("../shared/data/real/\(name)")
            let text = try String(contentsOf: url, encoding: .utf8)
            for line in text.split(separator: "\n") {
                let bytes = Array(line.utf8)
                guard let symbol = symbol(in: bytes) else { throw KafkaError(.consumeFailed, "no \"s\" field in a line of \(name)") }
                trades.append(Trade(symbol: symbol, line: bytes))
            }
        }
        return trades
    }

    /// The value of `"s":"..."` in a Binance trade line.
    private static func symbol(in line: [UInt8]) -> [UInt8]? {
        let marker = Array("\"s\":\"".utf8)
        guard let start = (0...(line.count - marker.count)).first(where: { line[$0..<($0 + marker.count)].elementsEqual(marker) }) else { return nil }
        let from = start + marker.count
        guard let end = line[from...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return Array(line[from..<end])
    }
}
