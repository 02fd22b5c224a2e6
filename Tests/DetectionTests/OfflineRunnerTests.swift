import XCTest

@testable import Detection

final class OfflineRunnerTests: XCTestCase {
    private func run(_ bytes: [UInt8], partitions: Int32, config: DetectionConfig = testConfig(latenessMs: 10_000), chunk: Int) -> OfflineReport {
        var runner = OfflineRunner(partitionCount: partitions, config: config)
        var i = 0
        while i < bytes.count {
            runner.feed(Array(bytes[i..<min(bytes.count, i + chunk)]))
            i += chunk
        }
        return runner.finish()
    }

    func testRealSpotFileEveryLineCounted() throws {
        let bytes = try RealData.bytes(RealData.spot)
        let report = run(bytes, partitions: 4, chunk: 1 << 16)
        XCTAssertEqual(report.records, 34_419)
        let totals = report.totals
        XCTAssertEqual(totals.consumed, 34_419)
        XCTAssertEqual(totals.consumed, totals.windowed + totals.late + totals.malformed)
        XCTAssertEqual(totals.malformed, 0)
        XCTAssertEqual(totals.late, 0, "the recording is sorted by T")
        // BTCUSDT -> partition 2, ETHUSDT -> 1 of 4 (Kafka's partitioner).
        XCTAssertEqual(report.partitions.map(\.consumed), [0, 14_515, 19_904, 0])
        XCTAssertEqual(report.partitions[2].nextOffset, 19_904)
        // 2024-08-08 23:54:15 to 2024-08-09 00:05:05 is about 33 slides per symbol.
        XCTAssertEqual(report.windows.filter { $0.symbol == "BTCUSDT" }.count, 30)
        XCTAssertEqual(report.windows.reduce(0) { $0 + ($1.startMs == report.windows[0].startMs ? 1 : 0) }, 2)
        XCTAssertTrue(report.windows.allSatisfy { $0.startMs % 20_000 == 0 && $0.endMs - $0.startMs == 60_000 })
        XCTAssertEqual(report.anomalies, report.anomalies.sorted {
            ($0.windowStartMs, $0.symbol, $0.kind.rawValue) < ($1.windowStartMs, $1.symbol, $1.kind.rawValue)
        })
    }

    func testSameResultWhateverTheChunking() throws {
        let bytes = try RealData.bytes(RealData.coinm)
        var config = testConfig(latenessMs: 10_000, baselineWindows: 6, minHistory: 3, z: 2, volume: 2)
        config.windowMs = 20_000
        config.slideMs = 10_000
        let whole = run(bytes, partitions: 3, config: config, chunk: bytes.count)
        XCTAssertEqual(whole.records, 8_830)
        XCTAssertFalse(whole.anomalies.isEmpty)
        for chunk in [1 << 16, 4_097, 113] {
            XCTAssertEqual(run(bytes, partitions: 3, config: config, chunk: chunk), whole, "chunk \(chunk)")
        }
    }

    func testMatchesPartitionProcessorsFedLikeTheCluster() throws {
        let lines = syntheticStream(seed: 21, count: 6_000)
        let config = testConfig(latenessMs: 10_000, minHistory: 3, z: 2.5, volume: 2)
        var file: [UInt8] = []
        for line in lines { file += line + [UInt8(ascii: "\n")] }
        let report = run(file, partitions: 5, config: config, chunk: 999)

        // The cluster: records keyed by their symbol bytes into 5 partitions (malformed ones
        // included, as the producer keys them), one processor per partition.
        var drivers = (0..<5).map { Driver(config, partition: Int32($0)) }
        for line in lines {
            let key = try XCTUnwrap(line.withUnsafeBytes { buffer in TradeKey.symbolRange(in: buffer).map { Array(buffer[$0]) } })
            drivers[Int(Murmur2Partitioner.partition(key: key, partitionCount: 5))].send(line)
        }
        XCTAssertGreaterThan(drivers.reduce(0) { $0 + $1.processor.stats.malformed }, 0)
        let anomalies = drivers.flatMap(\.output.anomalies)
        XCTAssertFalse(anomalies.isEmpty)
        XCTAssertEqual(Set(report.anomalies.map(\.id)), Set(anomalies.map(\.id)))
        XCTAssertEqual(report.anomalies.count, anomalies.count)
        for anomaly in anomalies {
            XCTAssertEqual(report.anomalies.first { $0.id == anomaly.id }, anomaly)
        }
        XCTAssertEqual(report.partitions, drivers.map(\.processor.stats))
    }

    func testLineHandling() {
        let text = "\n" + tradeJSON("AAA", t: 0, p: "1") + "\r\n   \n" + "not json\n" + "\r\n" + tradeJSON("BBB", t: 5, p: "2")
        var runner = OfflineRunner(partitionCount: 3, config: testConfig())
        runner.feed(Array(text.utf8))
        XCTAssertEqual(runner.records, 2, "the last line waits for its newline or finish()")
        let report = runner.finish()
        XCTAssertEqual(report.records, 3)
        XCTAssertEqual(report.totals.consumed, 3)
        XCTAssertEqual(report.totals.windowed, 2)
        XCTAssertEqual(report.malformed.map(\.partition), [0], "unparseable lines go to partition 0")
        XCTAssertEqual(report.malformed.first?.reason, "not an object")
        XCTAssertEqual(report.malformed.first?.excerpt, "not json")
    }

    func testMalformedLinesWithASymbolGoToTheSymbolsPartition() {
        // BTCUSDT is partition 2 of 4; a bad price does not change where the record is read.
        let text = #"{"s":"BTCUSDT","p":"oops","q":"1","T":1}"# + "\n" + #"{"p":"1","q":"1","T":1}"# + "\n"
        var runner = OfflineRunner(partitionCount: 4, config: testConfig())
        runner.feed(Array(text.utf8))
        let report = runner.finish()
        XCTAssertEqual(report.malformed.map(\.partition), [0, 2])
        XCTAssertEqual(report.malformed.map(\.reason), ["missing field s", "field p: expected decimal"])
        XCTAssertEqual(report.partitions.map(\.malformed), [1, 0, 1, 0])
    }

    func testTradeKeyIsTheSymbolAsWritten() {
        func key(_ record: String) -> String? {
            Array(record.utf8).withUnsafeBytes { buffer in
                TradeKey.symbolRange(in: buffer).map { String(decoding: buffer[$0], as: UTF8.self) }
            }
        }
        XCTAssertEqual(key(tradeJSON("ETHUSDT", t: 1, p: "1")), "ETHUSDT")
        XCTAssertEqual(key("{\"T\":1, \"s\" :\t\"btcusdt\"}"), "btcusdt", "not uppercased: the producer's key")
        XCTAssertNil(key(#"{"s":"BTC\"USDT"}"#))
        XCTAssertNil(key(#"{"s":""}"#))
        XCTAssertNil(key(#"{"s":123}"#))
        XCTAssertNil(key("{\"s\":\"\(String(repeating: "A", count: 33))\"}"))
        XCTAssertNil(key(#"{"s":"BTC"#))
        XCTAssertNil(key(""))
    }

    func testZeroPartitionsActsAsOne() {
        var runner = OfflineRunner(partitionCount: 0, config: testConfig())
        runner.feed(Array((tradeJSON(t: 0, p: "1") + "\n").utf8))
        XCTAssertEqual(runner.finish().partitions.count, 1)
    }
}
