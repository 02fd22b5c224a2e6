import Foundation
import Kafka
import Logging
import Protocol
import XCTest

/// The cluster end to end: broker, coordinator and two workers as separate processes.
final class ClusterTests: ClusterTestCase {
    /// A simulated market with injected anomalies, replayed through Kafka into a two-worker
    /// cluster, yields exactly the anomalies of `vigil detect` over the same file.
    func testReplayedSimulationStoresExactlyTheOfflineAnomalies() async throws {
        let trades = harness.directory.appendingPathComponent("trades.jsonl").path
        let labels = harness.directory.appendingPathComponent("labels.jsonl").path
        _ = try harness.run("simulate", [
            "simulate", "--out", trades, "--labels", labels, "--duration", "30m", "--rate", "60",
            "--seed", "42", "--start-ms", "1700000000000",
        ])
        let lines = try String(contentsOfFile: trades, encoding: .utf8).split(separator: "\n").count

        try startBrokerAndCoordinator()
        try startWorker("w1")
        try startWorker("w2")
        _ = try await awaitStatus("two workers sharing 12 partitions", timeout: .seconds(60)) { s in
            s.workers.filter { $0.state == "up" }.count == 2 && s.partitions.allSatisfy { $0.owner != nil }
        }

        let produced = try harness.run("replay", ["ingest", "replay", trades, "--brokers", bootstrap, "--topic", "trades"])
        XCTAssertTrue(produced.contains("produced \(lines)"), "replay output: \(produced)")

        let expected = try offlineAnomalies(trades)
        XCTAssertGreaterThan(expected.count, 0, "the simulation's injected anomalies must be detected offline")

        let status = try await awaitFullyProcessed(total: Int64(lines))
        XCTAssertEqual(Set(status.workers.flatMap(\.partitions)).count, 12)
        let stored = try await awaitStableAnomalies(expected: expected.count)
        assertSameAnomalies(stored, expected)

        // Every injected price shock and volume spike is among them (the kinds the first two detectors cover).
        let labelLines = try String(contentsOfFile: labels, encoding: .utf8).split(separator: "\n")
        for line in labelLines {
            let label = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            guard let kind = label["kind"] as? String, ["price_shock", "volume_spike"].contains(kind) else { continue }
            let symbol = label["symbol"] as! String
            let start = (label["start_ms"] as! NSNumber).int64Value
            let end = (label["end_ms"] as! NSNumber).int64Value
            let hit = stored.contains { s in
                s.anomaly.symbol == symbol && s.anomaly.windowEndMs > start && s.anomaly.windowStartMs <= end
            }
            XCTAssertTrue(hit, "injected \(kind) on \(symbol) at \(start)..\(end) was not detected")
        }
    }

    /// Every trade of the real Binance recording is counted into a window or as late.
    func testRealTradesAreAllCounted() async throws {
        let file = ProcessHarness.sharedData("real_trades_hftbacktest_spot.jsonl").path
        guard FileManager.default.fileExists(atPath: file) else { throw XCTSkip("\(file) is not present") }
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").count

        try startBrokerAndCoordinator()
        try startWorker("w1")
        try startWorker("w2")
        let produced = try harness.run("replay", ["ingest", "replay", file, "--brokers", bootstrap])
        XCTAssertTrue(produced.contains("produced \(lines)"), "replay output: \(produced)")

        let status = try await awaitFullyProcessed(total: Int64(lines))
        let consumed = status.partitions.reduce(0) { $0 + $1.consumed }
        let windowed = status.partitions.reduce(0) { $0 + $1.windowed }
        let late = status.partitions.reduce(0) { $0 + $1.late }
        let malformed = status.partitions.reduce(0) { $0 + $1.malformed }
        XCTAssertEqual(consumed, Int64(lines))
        XCTAssertEqual(malformed, 0)
        XCTAssertEqual(windowed + late, consumed, "count in = count windowed + late")
    }

    /// A malformed record in the topic is counted, logged with its partition and offset, and skipped.
    func testMalformedRecordIsCountedAndSkipped() async throws {
        try startBrokerAndCoordinator(partitions: 2)
        try startWorker("w1")
        var logger = Logger(label: "it.producer")
        logger.logLevel = .error
        let producer = try KafkaProducer(brokers: bootstrap, logger: logger)
        let good = #"{"e":"trade","E":1700000000001,"s":"BTCUSDT","t":1,"p":"100.5","q":"1","T":1700000000000,"m":false}"#
        let bad = #"{"e":"trade","s":"BTCUSDT","p":"oops","q":"1","T":1700000000500}"#
        let after = #"{"e":"trade","E":1700000001001,"s":"BTCUSDT","t":2,"p":"100.6","q":"1","T":1700000001000,"m":true}"#
        for line in [good, bad, after] {
            try producer.produce(topic: "trades", key: Array("BTCUSDT".utf8), value: Array(line.utf8), partition: 0)
        }
        _ = try producer.flush(timeoutMs: 10_000)

        let status = try await awaitStatus("3 records on partition 0 processed", timeout: .seconds(60)) { s in
            s.partitions.first { $0.partition == 0 }?.consumed == 3
        }
        let p0 = status.partitions.first { $0.partition == 0 }!
        XCTAssertEqual(p0.malformed, 1)
        XCTAssertEqual(p0.windowed, 2)
        try harness.poll("the worker to log the malformed record with its position", timeout: .seconds(10)) {
            let log = workers[0].stderr
            return log.contains("malformed") && log.contains("partition=0") && log.contains("offset=1")
        }
    }

    /// When the offsets a partition needs are gone from the broker (retention), the worker
    /// reports the lost range in its log and in the cluster status.
    func testOffsetsLostToRetentionAreReported() async throws {
        try startBrokerAndCoordinator(partitions: 2)
        var logger = Logger(label: "it.producer")
        logger.logLevel = .error
        // Valid trades padded with random hex in an unknown field (which the parser skips): far more
        // than the embedded broker keeps (~5 MiB a partition, after lz4).
        let producer = try KafkaProducer(brokers: bootstrap, logger: logger)
        var rng = SystemRandomNumberGenerator()
        for i in 0..<3_000 {
            let pad = (0..<4_000).map { _ in String(UInt8.random(in: 0...255, using: &rng), radix: 16) }.joined()
            let trade = #"{"e":"trade","s":"FILLER","t":\#(i),"p":"1.5","q":"2","T":\#(1_700_000_000_000 + i * 10),"m":false,"x":"\#(pad)"}"#
            try producer.produce(topic: "trades", key: Array("FILLER".utf8), value: Array(trade.utf8), partition: 1)
        }
        _ = try producer.flush(timeoutMs: 30_000)

        try startWorker("w1")
        let status = try await awaitStatus("partition 1 to report lost offsets", timeout: .seconds(90)) { s in
            s.partitions.first { $0.partition == 1 }.map { !$0.lost.isEmpty } ?? false
        }
        let lost = status.partitions.first { $0.partition == 1 }!.lost
        XCTAssertEqual(lost.first?.from, 0)
        XCTAssertGreaterThan(lost.first?.to ?? 0, 0)
        XCTAssertTrue(status.problems.contains { $0.contains("partition 1") && $0.contains("lost") }, "problems: \(status.problems)")
        XCTAssertTrue(workers[0].stderr.contains("offsets lost to retention"))
    }
}
