import Detection
import Foundation
import Ingest
import Kafka
import XCTest

/// `ReplaySource` on Binance public-data archives: both layouts, with and without a header,
/// plain, .gz and .zip; each row becomes the trade JSON the workers parse.
final class BinanceCSVReplayTests: IngestTestCase {
    private var lines: [String] = []
    private var trades: [Trade] = []
    private var archive: BinanceArchive!

    override func setUpWithError() throws {
        try super.setUpWithError()
        // 300 consecutive BTCUSDT trades of the recording.
        lines = Array(try RealTrades.spotLines().filter { $0.contains(#""s":"BTCUSDT""#) }.prefix(300))
        trades = try lines.map { try TradeParser.parse($0) }
        archive = BinanceArchive(directory: directory)
    }

    /// Replays `path` and checks every record against the recorded trades.
    @discardableResult
    private func replayMatchesRecording(
        _ path: String, symbol: String? = nil, format: ReplayFormat, file: StaticString = #filePath, line: UInt = #line
    ) throws -> [String] {
        let source = try ReplaySource(path: path, symbol: symbol, chunkSize: 1_000)
        defer { source.close() }
        XCTAssertEqual(source.format, format, file: file, line: line)
        XCTAssertEqual(source.symbols, ["BTCUSDT"], file: file, line: line)
        var record = IngestRecord()
        var produced: [String] = []
        while try source.next(into: &record) {
            let json = String(decoding: record.line, as: UTF8.self)
            XCTAssertEqual(String(decoding: record.key, as: UTF8.self), "BTCUSDT", file: file, line: line)
            XCTAssertEqual(record.symbolIndex, 0, file: file, line: line)
            let parsed = try TradeParser.parse(record.line)
            let original = trades[produced.count]
            XCTAssertEqual(parsed.symbol, original.symbol, json, file: file, line: line)
            XCTAssertEqual(parsed.eventTimeMs, original.eventTimeMs, json, file: file, line: line)
            XCTAssertEqual(record.timeMs, original.eventTimeMs, json, file: file, line: line)
            XCTAssertEqual(parsed.price, original.price, json, file: file, line: line)
            XCTAssertEqual(parsed.quantity, original.quantity, json, file: file, line: line)
            XCTAssertEqual(parsed.buyerIsMaker, original.buyerIsMaker, json, file: file, line: line)
            if format == .binanceTrades {
                XCTAssertEqual(parsed.tradeID, original.tradeID, json, file: file, line: line)
            }
            produced.append(json)
        }
        XCTAssertEqual(produced.count, trades.count, "every row replayed", file: file, line: line)
        XCTAssertEqual(source.malformedCount, 0, "\(source.malformedSamples)", file: file, line: line)
        return produced
    }

    func testTradesCSVWithoutHeaderTakesTheSymbolFromTheBinanceFileName() throws {
        let path = try archive.write(archive.tradesRows(trades, lines: lines, bestMatch: true), as: "BTCUSDT-trades-2024-08-09.csv")
        let produced = try replayMatchesRecording(path, format: .binanceTrades)
        let first = trades[0]
        XCTAssertEqual(produced[0], """
            {"e":"trade","E":\(first.eventTimeMs),"s":"BTCUSDT","t":\(first.tradeID!),"p":"61837.63000000","q":"0.02000000","T":\(first.eventTimeMs),"m":true}
            """)
    }

    func testTradesCSVWithHeaderFromGzipWithMicrosecondTimes() throws {
        let rows = archive.tradesRows(trades, lines: lines, bestMatch: false, microseconds: true, capitalized: false)
        let path = try archive.write(rows, header: "id,price,qty,quote_qty,time,is_buyer_maker", as: "spot.csv.gz")
        let source = try ReplaySource(path: path, symbol: "btcusdt")
        XCTAssertEqual(source.decompressionCommand?.hasPrefix("gzip -dc /"), true, source.decompressionCommand ?? "none")
        source.close()
        try replayMatchesRecording(path, symbol: "btcusdt", format: .binanceTrades)
    }

    func testAggTradesWithHeaderFromZip() throws {
        let rows = archive.aggTradesRows(trades, lines: lines, bestMatch: true)
        let path = try archive.write(rows, header: "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match",
                                     as: "BTCUSDT-aggTrades-2024-08-09.zip")
        let produced = try replayMatchesRecording(path, format: .binanceAggTrades)
        let first = trades[0]
        XCTAssertEqual(produced[0], """
            {"e":"aggTrade","E":\(first.eventTimeMs),"s":"BTCUSDT","a":500,"p":"61837.63000000","q":"0.02000000","f":\(first.tradeID!),"l":\(first.tradeID!),"T":\(first.eventTimeMs),"m":true}
            """)
        let source = try ReplaySource(path: path)
        XCTAssertEqual(source.decompressionCommand?.hasPrefix("unzip -p /"), true, source.decompressionCommand ?? "none")
    }

    /// Seven fields fit both layouts: trades with is_best_match, or aggTrades without it. The
    /// sixth field (a boolean or a time) tells them apart.
    func testSevenFieldRowsAreToldApartByTheirSixthField() throws {
        let agg = try archive.write(archive.aggTradesRows(trades, lines: lines, bestMatch: false), as: "BTCUSDT-aggTrades-2024-08-09.csv")
        try replayMatchesRecording(agg, format: .binanceAggTrades)
        let plain = try archive.write(archive.tradesRows(trades, lines: lines, bestMatch: true), as: "x.csv")
        try replayMatchesRecording(plain, symbol: "BTCUSDT", format: .binanceTrades)
    }

    func testGzippedJSONLinesReplayAsJSON() throws {
        let path = try archive.write(lines, as: "btcusdt_20240809.gz")
        let source = try ReplaySource(path: path)
        defer { source.close() }
        XCTAssertEqual(source.format, .jsonLines)
        var record = IngestRecord()
        var replayed: [String] = []
        while try source.next(into: &record) { replayed.append(String(decoding: record.line, as: UTF8.self)) }
        XCTAssertEqual(replayed, lines, "JSON lines pass through byte for byte")
    }

    func testBadRowsAreSkippedWithTheirLineNumbersAndTheRestReplays() throws {
        var rows = archive.tradesRows(Array(trades.prefix(5)), lines: Array(lines.prefix(5)), bestMatch: true)
        rows.insert("1,abc,0.1,1,1723161255342,True,True", at: 1)  // line 3 (after the header)
        rows.insert("2,1.5,0.1,1,1723161255342,maybe,True", at: 3)  // line 5
        rows.insert("3,1.5,0.1", at: 5)  // line 7
        let path = try archive.write(rows, header: "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match", as: "ETHUSDT-trades-2024-08-09.csv")
        let source = try ReplaySource(path: path)
        defer { source.close() }
        XCTAssertEqual(source.symbols, ["ETHUSDT"])
        var record = IngestRecord()
        var count = 0
        while try source.next(into: &record) { count += 1 }
        XCTAssertEqual(count, 5)
        XCTAssertEqual(source.malformedSamples.map(\.lineNumber), [3, 5, 7])
        XCTAssertEqual(source.malformedSamples.map(\.reason), [
            "field 2 (price) is not a plain decimal number",
            "field 6 (is_buyer_maker) is not true or false",
            "3 comma-separated fields; expected id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]",
        ])
    }

    func testUnknownSymbolOrLayoutIsOneClearError() throws {
        let noSymbol = try archive.write(archive.tradesRows(trades, lines: lines, bestMatch: false), as: "trades.csv")
        XCTAssertThrowsError(try ReplaySource(path: noSymbol)) { error in
            let error = error as? IngestError
            XCTAssertEqual(error?.code, .unrecognizedInput)
            XCTAssertTrue(error?.message.contains("--symbol") ?? false, "\(String(describing: error))")
            XCTAssertTrue(error?.message.contains("BTCUSDT-trades-2024-08-09.zip") ?? false, "\(String(describing: error))")
        }
        let garbage = try archive.write(["hello world"], as: "notes.txt")
        XCTAssertThrowsError(try ReplaySource(path: garbage)) { error in
            let error = error as? IngestError
            XCTAssertEqual(error?.code, .unrecognizedInput)
            XCTAssertTrue(error?.message.contains(#""hello world""#) ?? false, "\(String(describing: error))")
        }
    }

    func testDamagedArchiveIsAReadErrorNamingTheTool() throws {
        let path = directory.appendingPathComponent("BTCUSDT-trades-2024-08-09.csv.gz").path
        try Data([0x1F, 0x8B, 0x08, 0x00, 0x01, 0x02, 0x03]).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try drain(ReplaySource(path: path))) { error in
            let error = error as? IngestError
            XCTAssertEqual(error?.code, .readFailed)
            XCTAssertTrue(error?.message.contains("`gzip -dc \(path)` exited with status") ?? false, "\(String(describing: error))")
        }
    }

    /// A zip archive replayed into the embedded broker: the topic holds every row's JSON, keyed by symbol.
    func testReplayedArchiveReachesKafka() async throws {
        let path = try archive.write(archive.tradesRows(trades, lines: lines, bestMatch: true), as: "BTCUSDT-trades-2024-08-09.zip")
        let expected = try replayMatchesRecording(path, format: .binanceTrades)
        let broker = try EmbeddedBroker(topic: "trades", partitions: 3, logger: logger)
        defer { broker.shutdown() }
        let producer = try KafkaProducer(brokers: broker.bootstrap, logger: logger)
        defer { producer.close() }
        var source = try ReplaySource(path: path)
        let report = try await Ingestor(pacing: .max, logger: logger).run(&source, into: KafkaSink(producer: producer, topic: "trades"))
        source.close()
        XCTAssertEqual(report.produced, trades.count)
        XCTAssertEqual(report.delivered, trades.count)
        XCTAssertEqual(report.perSymbol, ["BTCUSDT": trades.count])

        let records = try await readTopic("trades", partitions: 3, brokers: broker.bootstrap, count: trades.count)
        XCTAssertEqual(records.map(\.value), expected, "one key, one partition: file order")
        XCTAssertEqual(Set(records.map(\.key)), ["BTCUSDT"])
    }

    private func drain(_ source: ReplaySource) throws {
        var record = IngestRecord()
        while try source.next(into: &record) {}
    }
}
