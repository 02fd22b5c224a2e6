import XCTest

@testable import Detection

/// Window boundaries, pane alignment, watermark, late events, empty windows, long silences.
/// Default geometry: windows 60 s sliding 20 s (3 panes); lateness as each test says.
final class WindowTests: XCTestCase {
    func testTradeExactlyAtWindowEndGoesToTheNextWindow() {
        var d = Driver(testConfig(latenessMs: 0))
        d.trade(t: 0, p: "100")
        d.trade(t: 59_999, p: "101")
        XCTAssertTrue(d.output.windows.isEmpty)
        d.trade(t: 60_000, p: "102")  // watermark 60 000 reaches the end of [0, 60 000)
        XCTAssertEqual(d.output.windows.count, 1)
        let first = d.output.windows[0]
        XCTAssertEqual([first.startMs, first.endMs, first.count], [0, 60_000, 2])
        XCTAssertEqual([first.open, first.close], [100, 101])

        d.trade(t: 80_000, p: "103")  // closes [20 000, 80 000): 59 999 and 60 000
        XCTAssertEqual(d.output.windows.count, 2)
        let second = d.output.windows[1]
        XCTAssertEqual([second.startMs, second.endMs, second.count], [20_000, 80_000, 2])
        XCTAssertEqual([second.open, second.close], [101, 102])
    }

    func testWindowsAreAlignedToTheSlide() {
        var d = Driver(testConfig(latenessMs: 10_000))
        d.trade(t: 30_000, p: "100")  // watermark 20 000: first window [20 000, 80 000)
        d.trade(t: 89_999, p: "100")  // watermark 79 999: nothing closes
        XCTAssertTrue(d.output.windows.isEmpty)
        d.trade(t: 90_000, p: "100")  // watermark 80 000
        XCTAssertEqual(d.output.windows.map(\.startMs), [20_000])
        XCTAssertEqual(d.output.windows.map(\.count), [1])
        XCTAssertEqual(d.processor.stats.watermarkMs, 80_000)
    }

    func testWindowsStartingBeforeTheFirstWatermarkAreNotEvaluated() {
        var d = Driver(testConfig(latenessMs: 0))
        d.trade(t: 50_000, p: "100")  // also in [0, 60 000) and [20 000, 80 000), not observed whole
        d.trade(t: 100_000, p: "100")
        XCTAssertEqual(d.output.windows.map(\.startMs), [40_000])
    }

    func testNegativeTimesAlignWithFloorDivision() {
        var d = Driver(testConfig(latenessMs: 0))
        d.trade(t: -50_000, p: "100")  // pane -3 = [-60 000, -40 000)
        d.trade(t: -30_000, p: "101")  // pane -2
        d.trade(t: 30_000, p: "102")  // watermark 30 000 closes windows ending <= 30 000
        XCTAssertEqual(d.output.windows.map(\.startMs), [-60_000, -40_000])
        XCTAssertEqual(d.output.windows.map(\.endMs), [0, 20_000])
        XCTAssertEqual(d.output.windows.map(\.count), [2, 1])
    }

    func testExtremeTimesDoNotTrapAndAccountForEveryWindow() {
        var d = Driver(testConfig(latenessMs: 0))
        d.trade(t: -999_999_999_999_999_998, p: "1")  // E = T + 1 must fit 18 digits too
        d.trade(t: 999_999_999_999_999_998, p: "1")
        let stats = d.processor.stats
        // Windows from pane -50 000 000 000 000 through 49 999 999 999 996.
        XCTAssertEqual(stats.windowsClosed + stats.windowsSkipped, 99_999_999_999_997)
        XCTAssertEqual(stats.windowsClosed, 16, "one window with the trade, then the last 12 + 3")
    }

    func testWatermarkAndLateEvents() {
        var d = Driver(testConfig(latenessMs: 10_000))
        d.trade(t: 100_000, p: "100")  // watermark 90 000
        d.trade(t: 90_000, p: "100")  // exactly at the watermark: on time
        d.trade(t: 89_999, p: "100")  // below: late
        d.trade(t: 95_000, p: "100")  // on time; the watermark does not move back
        d.trade("NEWCOIN", t: 1, p: "5")  // late, and a symbol never seen on time
        XCTAssertEqual(d.output.lateEvents, [
            LateEvent(partition: 0, offset: 2, symbol: "BTCUSDT", eventTimeMs: 89_999, watermarkMs: 90_000),
            LateEvent(partition: 0, offset: 4, symbol: "NEWCOIN", eventTimeMs: 1, watermarkMs: 90_000),
        ])
        let stats = d.processor.stats
        XCTAssertEqual(stats.consumed, 5)
        XCTAssertEqual(stats.windowed, 3)
        XCTAssertEqual(stats.late, 2)
        XCTAssertEqual(stats.malformed, 0)
        XCTAssertEqual(stats.watermarkMs, 90_000)
        XCTAssertEqual(stats.symbols, 1, "a late trade creates no window state")
        XCTAssertEqual(stats.nextOffset, 5)
    }

    func testLateTradesChangeNoResult() {
        func run(withLate: Bool) -> [WindowSummary] {
            var d = Driver(testConfig(latenessMs: 10_000, minHistory: 1))
            for i in 0..<40 {
                let t = Int64(i) * 7_000
                d.trade(t: t, p: "\(100 + i % 5)", q: "\(1 + i % 3)")
                if withLate && i % 4 == 3 { d.trade(t: t - 20_000, p: "1", q: "1000") }
            }
            if withLate { XCTAssertEqual(d.processor.stats.late, 10) }
            return d.output.windows
        }
        let clean = run(withLate: false)
        XCTAssertFalse(clean.isEmpty)
        XCTAssertEqual(run(withLate: true), clean)
    }

    func testMalformedRecordsAreCountedAndReported() {
        var d = Driver(testConfig())
        d.send(#"{"s":"BTCUSDT","p":"1","q":"1"}"#)
        d.send("")
        d.trade(t: 0, p: "1")
        XCTAssertEqual(d.output.malformed, [
            MalformedRecord(partition: 0, offset: 0, reason: "missing field T", excerpt: #"{"s":"BTCUSDT","p":"1","q":"1"}"#),
            MalformedRecord(partition: 0, offset: 1, reason: "empty record", excerpt: ""),
        ])
        let long = String(repeating: "x", count: 500)
        d.send(long)
        XCTAssertEqual(d.output.malformed.last?.excerpt.count, 200, "excerpts keep the first 200 bytes")
        let stats = d.processor.stats
        XCTAssertEqual([stats.consumed, stats.windowed, stats.late, stats.malformed], [4, 1, 0, 3])
    }

    func testEmptyWindowsAreClosedAndCarryTheLastClose() {
        var d = Driver(testConfig(latenessMs: 0))
        d.trade("AAA", t: 0, p: "100")
        d.trade("AAA", t: 10_000, p: "105")
        d.trade("BBB", t: 200_000, p: "1")  // watermark 200 000: AAA windows 0 ... 7 close
        let windows = d.output.windows
        XCTAssertEqual(windows.map(\.startMs), (0...7).map { Int64($0) * 20_000 })
        XCTAssertTrue(windows.allSatisfy { $0.symbol == "AAA" })
        XCTAssertEqual(windows[0].count, 2)
        for empty in windows.dropFirst() {
            XCTAssertEqual(empty.count, 0)
            XCTAssertEqual([empty.open, empty.high, empty.low, empty.close, empty.vwap], [105, 105, 105, 105, 105])
            XCTAssertEqual([empty.baseVolume, empty.quoteVolume, empty.logReturn, empty.volatility, empty.largestTrade], [0, 0, 0, 0, 0])
            XCTAssertEqual(empty.takerBuyRatio, 0.5)
            XCTAssertEqual(empty.longestGapMs, 60_000)
        }
    }

    func testLongSilenceCatchUpIsCappedAndBaselineRefilled() {
        var d = Driver(testConfig(latenessMs: 0, baselineWindows: 12))
        d.trade(t: 0, p: "100")
        d.trade(t: 36_000_000, p: "101")  // ten hours later: watermark pane 1800, windows through 1797
        let stats = d.processor.stats
        XCTAssertEqual(stats.windowsClosed, 16, "the window with the trade, then the last 12 + 3")
        XCTAssertEqual(stats.windowsSkipped, 1_782)
        let starts = d.output.windows.map(\.startMs)
        XCTAssertEqual(starts.first, 0)
        XCTAssertEqual(Array(starts.dropFirst()), (1_783...1_797).map { Int64($0) * 20_000 })
        XCTAssertEqual(d.output.windows.first?.count, 1)
        XCTAssertTrue(d.output.windows.dropFirst().allSatisfy { $0.count == 0 && $0.close == 100 })
        XCTAssertEqual(d.processor.states[0].baseline.count, 12, "reset, then refilled by the closed empty windows")
        XCTAssertTrue(d.output.anomalies.isEmpty)

        d.trade(t: 36_060_000, p: "101")
        XCTAssertEqual(d.output.windows.suffix(3).map(\.startMs), [35_960_000, 35_980_000, 36_000_000])
        XCTAssertEqual(d.output.windows.suffix(3).map(\.count), [1, 1, 1])
    }

    func testWindowsWithTradesAreNeverSkipped() {
        var d = Driver(testConfig(latenessMs: 30_000))
        d.trade(t: 100_000, p: "100")  // pane 5; watermark 70 000, origin pane 3
        d.trade(t: 75_000, p: "99")  // on time, pane 3
        d.trade(t: 99_000, p: "98")  // pane 4
        d.trade(t: 50_000_000, p: "97")  // jump
        let withTrades = d.output.windows.filter { $0.count > 0 }
        XCTAssertEqual(withTrades.map(\.startMs), [60_000, 80_000, 100_000])
        XCTAssertEqual(withTrades.map(\.count), [3, 2, 1])
        XCTAssertEqual(d.output.windows.count, 3 + 15)
    }

    func testConsumedEqualsWindowedPlusLatePlusMalformed() {
        var d = Driver(testConfig(latenessMs: 10_000))
        for record in syntheticStream(seed: 7, count: 20_000) { d.send(record) }
        let s = d.processor.stats
        XCTAssertEqual(s.consumed, 20_000)
        XCTAssertEqual(s.consumed, s.windowed + s.late + s.malformed)
        XCTAssertGreaterThan(s.late, 0)
        XCTAssertGreaterThan(s.malformed, 0)
        XCTAssertGreaterThan(s.windowsSkipped, 0, "the three-hour silence is capped")
        XCTAssertEqual(Int64(d.output.lateEvents.count), s.late)
        XCTAssertEqual(Int64(d.output.malformed.count), s.malformed)
        XCTAssertEqual(Int64(d.output.windows.count), s.windowsClosed)
        XCTAssertEqual(Int64(d.output.anomalies.count), s.anomalies)
    }

    func testInvalidConfigurationIsClampedNotTrapped() {
        var config = testConfig()
        config.slideMs = 0
        config.windowMs = -5
        config.allowedLatenessMs = -1
        config.baselineWindows = 0
        config.minHistory = 99
        XCTAssertFalse(config.validationProblems().isEmpty)
        var d = Driver(config)
        for i in 0..<50 { d.trade(t: Int64(i * 3), p: "1") }
        XCTAssertEqual(d.processor.stats.windowed, 50)
        XCTAssertTrue(testConfig().validationProblems().isEmpty)
        XCTAssertTrue(DetectionConfig().validationProblems().isEmpty)
    }
}
