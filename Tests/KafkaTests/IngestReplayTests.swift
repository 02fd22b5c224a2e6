import Foundation
import XCTest

import Ingest

/// `ReplaySource`: chunked line splitting, keys and times, and what it skips.
final class IngestReplayTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = try IngestTestSupport.temporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func write(_ text: String, name: String = "trades.jsonl") throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    struct Replayed: Equatable {
        var line: String
        var key: String
        var timeMs: Int64
        var lineNumber: Int
    }

    func replay(_ path: String, chunkSize: Int = 1 << 20, maximumLineLength: Int = 1 << 20) throws -> (records: [Replayed], source: ReplaySource) {
        let source = try ReplaySource(path: path, chunkSize: chunkSize, maximumLineLength: maximumLineLength)
        var record = IngestRecord()
        var records: [Replayed] = []
        while try source.next(into: &record) {
            XCTAssertEqual(source.symbols[record.symbolIndex], String(decoding: record.key, as: UTF8.self))
            records.append(Replayed(line: String(decoding: record.line, as: UTF8.self),
                                    key: String(decoding: record.key, as: UTF8.self),
                                    timeMs: record.timeMs, lineNumber: record.lineNumber))
        }
        return (records, source)
    }

    func trade(_ symbol: String, _ time: Int64, id: Int = 1) -> String {
        #"{"e":"trade","E":\#(time + 1),"s":"\#(symbol)","t":\#(id),"p":"61837.63","q":"0.02000","T":\#(time),"m":true}"#
    }

    func testLinesSplitAcrossChunksComeOutWhole() throws {
        let lines = (0..<50).map { trade($0 % 3 == 0 ? "ETHUSDT" : "BTCUSDT", 1_723_161_255_342 + Int64($0), id: $0) }
        let path = try write(lines.joined(separator: "\n") + "\n")
        for chunkSize in [1, 2, 7, 64, 113, 4_096] {
            let (records, source) = try replay(path, chunkSize: chunkSize)
            XCTAssertEqual(records.map(\.line), lines, "chunk size \(chunkSize)")
            XCTAssertEqual(records.map(\.key), (0..<50).map { $0 % 3 == 0 ? "ETHUSDT" : "BTCUSDT" })
            XCTAssertEqual(records.map(\.timeMs), (0..<50).map { 1_723_161_255_342 + Int64($0) })
            XCTAssertEqual(records.map(\.lineNumber), Array(1...50))
            XCTAssertEqual(source.symbols, ["ETHUSDT", "BTCUSDT"], "in first-seen order")
            XCTAssertEqual(source.malformedCount, 0)
        }
    }

    func testALastLineWithoutNewlineIsReplayed() throws {
        let path = try write(trade("BTCUSDT", 1) + "\n" + trade("SOLUSDT", 2))
        for chunkSize in [3, 1 << 20] {
            let (records, _) = try replay(path, chunkSize: chunkSize)
            XCTAssertEqual(records.map(\.key), ["BTCUSDT", "SOLUSDT"])
            XCTAssertEqual(records.last?.line, trade("SOLUSDT", 2))
            XCTAssertEqual(records.last?.lineNumber, 2)
        }
    }

    func testEmptyAndBlankLinesAreSkippedSilentlyAndCRLFIsStripped() throws {
        let text = "\n" + trade("BTCUSDT", 1) + "\r\n\r\n   \n\t\n" + trade("ETHUSDT", 2) + "\n\n"
        let path = try write(text)
        for chunkSize in [5, 1 << 20] {
            let (records, source) = try replay(path, chunkSize: chunkSize)
            XCTAssertEqual(records.map(\.line), [trade("BTCUSDT", 1), trade("ETHUSDT", 2)])
            XCTAssertEqual(records.map(\.lineNumber), [2, 6])
            XCTAssertEqual(source.malformedCount, 0)
            XCTAssertEqual(source.linesRead, 7)
        }
    }

    func testAnEmptyFileReplaysNothing() throws {
        let (records, source) = try replay(try write(""))
        XCTAssertTrue(records.isEmpty)
        XCTAssertEqual(source.linesRead, 0)
    }

    func testMalformedLinesAreCountedWithTheirNumbersAndSkipped() throws {
        let lines = [
            trade("BTCUSDT", 10),
            #"{"e":"trade","E":11,"t":1,"p":"1.0","q":"1.0","T":10,"m":true}"#,  // no symbol
            trade("ETHUSDT", 12),
            #"{"e":"trade","s":"BTCUSDT","p":"1.0","T":12.5,"m":true}"#,  // fractional T
            "garbage",
            #"{"e":"trade","s":"BTCUSDT","p":"1.0","m":true}"#,  // no T
            #"{"e":"trade","s":"","T":13}"#,  // empty symbol
            #"{"e":"trade","s":"BTC\"USDT","T":13}"#,  // escape in symbol
            #"{"e":"trade","s":42,"T":13}"#,  // symbol not a string
            #"{"e":"trade", "s" : "SOLUSDT", "T" : 14, "p":"bad price"}"#,  // keyable: goes through
        ]
        let (records, source) = try replay(try write(lines.joined(separator: "\n") + "\n"), chunkSize: 16)
        XCTAssertEqual(records.map(\.lineNumber), [1, 3, 10])
        XCTAssertEqual(records.map(\.key), ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
        XCTAssertEqual(records.last?.timeMs, 14)
        XCTAssertEqual(source.malformedCount, 7)
        XCTAssertEqual(source.malformedSamples.map(\.lineNumber), [2, 4, 5, 6, 7, 8, 9])
        XCTAssertEqual(source.malformedSamples[0].reason, #"no "s" (symbol) field"#)
        XCTAssertEqual(source.malformedSamples[1].reason, #""T" is not a whole number of milliseconds"#)
        XCTAssertEqual(source.malformedSamples[2].excerpt, "garbage")
        XCTAssertEqual(source.malformedSamples[3].reason, #"no "T" (trade time) field"#)
    }

    func testAnOverlongLineIsReportedAndTheNextLinesStillReplay() throws {
        let long = #"{"e":"trade","s":"BTCUSDT","T":1,"pad":""# + String(repeating: "x", count: 500) + #""}"#
        let lines = [trade("ETHUSDT", 1), long, trade("BTCUSDT", 2), long]
        let (records, source) = try replay(try write(lines.joined(separator: "\n")), chunkSize: 32, maximumLineLength: 200)
        XCTAssertEqual(records.map(\.lineNumber), [1, 3])
        XCTAssertEqual(source.malformedSamples.map(\.lineNumber), [2, 4])
        XCTAssertEqual(source.malformedSamples.first?.reason, "line longer than 200 bytes")
    }

    func testTheRealSpotRecordingReplaysCompletely() throws {
        let url = IngestTestSupport.realTrades("real_trades_hftbacktest_spot.jsonl")
        let (records, source) = try replay(url.path, chunkSize: 64 * 1024)
        XCTAssertEqual(records.count, 34_419)
        XCTAssertEqual(records.filter { $0.key == "BTCUSDT" }.count, 19_904)
        XCTAssertEqual(records.filter { $0.key == "ETHUSDT" }.count, 14_515)
        XCTAssertEqual(Set(source.symbols), ["BTCUSDT", "ETHUSDT"])
        XCTAssertEqual(source.malformedCount, 0)
        XCTAssertEqual(records.map(\.timeMs), records.map(\.timeMs).sorted(), "the recording is sorted by T")
        let original = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(records.map(\.line), original)
    }

    func testAMissingFileSaysWhichPath() {
        XCTAssertThrowsError(try ReplaySource(path: directory.appendingPathComponent("nope.jsonl").path)) { error in
            XCTAssertEqual((error as? IngestError)?.code, .cannotOpen)
            XCTAssertTrue("\(error)".contains("nope.jsonl"), "\(error)")
        }
    }
}
