import Foundation
import XCTest

@testable import Detection

/// The pattern rules on hand-made windows. The baseline's return scale is 0.005 and its median
/// volatility 0.001, so moves are measured in units of 0.005 (`PatternDetector.moveScale`) and
/// `moveZ` = 8 means a leg of 4 %.
final class PatternTests: XCTestCase {
    private let baseline = BaselineStatistics(
        windows: 12,
        logReturn: RobustEstimate(median: 0, mad: 0, scale: 0.005),
        volatility: RobustEstimate(median: 0.001, mad: 0, scale: 0.0005),
        logCount: RobustEstimate(median: log(601), mad: 0, scale: 0.1),
        logQuoteVolume: RobustEstimate(median: log(60_001), mad: 0, scale: 0.1),
        medianQuoteVolume: 60_000, medianTradeCount: 600, medianLongestGapMs: 400)

    private func window(
        open: Double, high: Double? = nil, low: Double? = nil, close: Double, buy: Double = 0.5, quote: Double = 60_000,
        volatility: Double = 0.001, count: Int64 = 600, gapMs: Int64 = 400
    ) -> WindowFeatures {
        WindowFeatures(
            count: count, baseVolume: quote / close, quoteVolume: quote, vwap: close, open: open,
            high: high ?? max(open, close), low: low ?? min(open, close), close: close, logReturn: log(close / open),
            volatility: volatility, takerBuyRatio: buy, largestTrade: 1, longestGapMs: gapMs, recentQuoteVolume: quote / 3)
    }

    private func input(_ w: WindowFeatures, memory: PatternMemory = PatternMemory(), endMs: Int64 = 60_000) -> DetectorInput {
        DetectorInput(
            window: w, baseline: baseline, settings: SymbolSettings(config: testConfig(z: 3.5), symbol: "X"), windowMs: 60_000,
            panesPerWindow: 3, isolationScore: nil, patterns: memory, endMs: endMs)
    }

    private func fired(_ input: DetectorInput) -> [AnomalyKind: DetectorFinding] {
        var findings: [DetectorFinding] = []
        PatternDetector().evaluate(input, into: &findings)
        var result: [AnomalyKind: DetectorFinding] = [:]
        for f in findings where f.fired { result[f.kind] = f }
        return result
    }

    func testMoveScaleIsTheLargerYardstick() {
        XCTAssertEqual(PatternDetector.moveScale(baseline), 0.005)
        var noisy = baseline
        noisy.volatility = RobustEstimate(median: 0.02, mad: 0, scale: 0.002)
        XCTAssertEqual(PatternDetector.moveScale(noisy), 0.02)
    }

    func testFlashCrashInsideOneWindow() throws {
        // 100 -> 90 -> 95: leg ln(100/90) = 0.10536 = 21.07 scales, won back ln(95/90) = 0.05407 >= 0.3 x 0.10536.
        let crash = try XCTUnwrap(fired(input(window(open: 100, low: 90, close: 95)))[.flashCrash])
        XCTAssertEqual(crash.score, log(100.0 / 90) / 0.005, accuracy: 1e-9)
        XCTAssertEqual(crash.value, log(90.0 / 100), accuracy: 1e-12)
        XCTAssertEqual(crash.threshold, 8)
        // 100 -> 90 -> 92.9: won back ln(92.9/90) = 0.0317 >= 0.0316: fires; 92.8 (0.0306) does not.
        XCTAssertNotNil(fired(input(window(open: 100, low: 90, close: 92.9)))[.flashCrash])
        XCTAssertNil(fired(input(window(open: 100, low: 90, close: 92.8)))[.flashCrash])
        // A 3 % drop is 6.1 scales, under moveZ 8, however it reverts.
        XCTAssertNil(fired(input(window(open: 100, low: 97, close: 99.5)))[.flashCrash])
    }

    func testFlashCrashAcrossWindowsAndItsMemory() throws {
        // Window 1: 100 -> 92 -> 92.5: a sharp leg (16.7 scales) barely reverted (0.0054 < 0.025).
        let first = input(window(open: 100, low: 92, close: 92.5), endMs: 60_000)
        XCTAssertNil(fired(first)[.flashCrash])
        var memory = PatternMemory()
        memory.advance(with: first, fired: [])
        XCTAssertEqual(memory.moveDirection, -1)
        XCTAssertEqual([memory.moveReference, memory.moveExtreme, memory.moveScale], [100, 92, 0.005])
        // Window 2 (20 s later): closes at 95; leg from 100 to 92, won back ln(95/92) = 0.032 >= 0.025.
        let second = input(window(open: 92.5, close: 95), memory: memory, endMs: 80_000)
        let crash = try XCTUnwrap(fired(second)[.flashCrash])
        XCTAssertEqual(crash.score, log(100.0 / 92) / 0.005, accuracy: 1e-9)
        memory.advance(with: second, fired: [.flashCrash])
        XCTAssertEqual(memory.moveDirection, 0, "reported once, then forgotten")
        // The same recovery 150 s after the leg is still remembered; 150.001 s is not.
        var stale = PatternMemory()
        stale.advance(with: first, fired: [])
        XCTAssertNotNil(fired(input(window(open: 92.5, close: 95), memory: stale, endMs: 210_000))[.flashCrash])
        XCTAssertNil(fired(input(window(open: 92.5, close: 95), memory: stale, endMs: 210_001))[.flashCrash])
    }

    func testSpikeThatFadesIsAFlashMoveButAPumpIsNot() throws {
        // 100 -> 110 -> 104: up 19.06 scales, gave back ln(110/104) = 0.0561 >= 0.3 x 0.0953.
        let spike = try XCTUnwrap(fired(input(window(open: 100, high: 110, close: 104)))[.flashCrash])
        XCTAssertGreaterThan(spike.value, 0)
        // The same shape with buy pressure and 3x volume is a pump window: left to the pump rule.
        let pump = window(open: 100, high: 110, close: 104, buy: 0.7, quote: 180_000)
        XCTAssertTrue(PatternDetector.isPumpWindow(input(pump)))
        XCTAssertNil(fired(input(pump))[.flashCrash])
    }

    func testPumpAndDump() throws {
        // Three rising windows with buyers (z of the return 9.6, 7.3, 9.3 >= 3.5; buy >= 0.6; volume >= 2x).
        var memory = PatternMemory()
        let rises = [(100.0, 104.9), (104.9, 108.8), (108.8, 114.0)]
        for (i, (open, close)) in rises.enumerated() {
            let w = input(window(open: open, close: close, buy: 0.75, quote: 150_000), memory: memory, endMs: 60_000 + Int64(i) * 20_000)
            XCTAssertTrue(PatternDetector.isPumpWindow(w))
            XCTAssertNil(fired(w)[.pumpAndDump], "no dump yet")
            memory.advance(with: w, fired: [])
        }
        XCTAssertEqual([memory.pumpBase, memory.pumpPeak, memory.pumpScale], [100, 114, 0.005])
        // The dump: sellers (buy 0.3) take the close to 106.5, giving back ln(114/106.5) = 0.068 >= 0.5 x ln(1.14) = 0.0655.
        let dump = input(window(open: 114, close: 106.5, buy: 0.3), memory: memory, endMs: 120_000)
        let found = try XCTUnwrap(fired(dump)[.pumpAndDump])
        XCTAssertEqual(found.score, log(1.14) / 0.005, accuracy: 1e-9)
        XCTAssertEqual(found.value, log(1.14), accuracy: 1e-12)
        XCTAssertNil(fired(input(window(open: 114, close: 107, buy: 0.3), memory: memory, endMs: 120_000))[.pumpAndDump], "gave back 0.0634 < 0.0655")
        XCTAssertNil(fired(input(window(open: 114, close: 106.5, buy: 0.5), memory: memory, endMs: 120_000))[.pumpAndDump], "buyers still half")
        XCTAssertNil(fired(input(window(open: 114, close: 106.5, buy: 0.3), memory: memory, endMs: 400_001))[.pumpAndDump], "300 s after the last rise: forgotten")
        memory.advance(with: dump, fired: [.pumpAndDump])
        XCTAssertEqual(memory.pumpBase, 0)
    }

    func testVolatilityBurst() throws {
        // Volatility 0.006: z = (0.006 - 0.001) / 0.0005 = 10, 6x the median, and the range ln(100.5/99.8) = 0.007: 0.86 >= 0.75.
        let burst = try XCTUnwrap(fired(input(window(open: 100, high: 100.5, low: 99.8, close: 100.1, volatility: 0.006)))[.volatilityBurst])
        XCTAssertEqual(burst.score, 10, accuracy: 1e-9)
        // The same volatility on a 5 % slide travelled rather than whipsawed: 0.006 < 0.75 x 0.0513.
        XCTAssertNil(fired(input(window(open: 100, close: 95, volatility: 0.006)))[.volatilityBurst])
        // z 3 < 3.5.
        XCTAssertNil(fired(input(window(open: 100, high: 100.2, low: 99.9, close: 100, volatility: 0.0025)))[.volatilityBurst])
    }

    func testLiquidityGap() throws {
        // Median 600 trades a minute = 10 a second: a 5 s gap misses 50 >= 30; 2.9 s misses 29.
        let gap = try XCTUnwrap(fired(input(window(open: 100, close: 100, gapMs: 5_000)))[.liquidityGap])
        XCTAssertEqual(gap.score, 50, accuracy: 1e-9)
        XCTAssertEqual(gap.value, 5_000)
        XCTAssertEqual(gap.expected, 400)
        XCTAssertNil(fired(input(window(open: 100, close: 100, gapMs: 2_900)))[.liquidityGap])
        // An empty window: the whole minute, 600 trades missed.
        let empty = WindowFeatures.empty(carriedClose: 100, windowMs: 60_000)
        XCTAssertEqual(try XCTUnwrap(fired(input(empty))[.liquidityGap]).score, 600)
        // A market that trades 20 times a minute never reaches 30 missed trades in one window.
        var sleepy = baseline
        sleepy.medianTradeCount = 20
        let quiet = DetectorInput(
            window: empty, baseline: sleepy, settings: SymbolSettings(config: testConfig(), symbol: "X"), windowMs: 60_000,
            panesPerWindow: 3, isolationScore: nil, patterns: PatternMemory(), endMs: 60_000)
        XCTAssertNil(fired(quiet)[.liquidityGap])
    }

    func testPatternsReportOnTheirOwnUnderFiltered() {
        var config = testConfig(policy: .filtered)
        config.cooldownMs = 0
        var cooldowns = Cooldowns()
        var anomalies: [Anomaly] = []
        let crash = DetectorInput(
            window: window(open: 100, low: 90, close: 95), baseline: baseline, settings: SymbolSettings(config: config, symbol: "X"),
            windowMs: 60_000, panesPerWindow: 3, isolationScore: 0.3, patterns: PatternMemory(), endMs: 60_000)
        let outcome = WindowEvaluator.evaluate(
            crash, cooldowns: &cooldowns,
            context: .init(symbol: "X", startMs: 0, endMs: 60_000, detectedAtMs: 60_000, partition: 0, offset: 0),
            into: &anomalies)
        XCTAssertEqual(anomalies.map(\.kind), [.flashCrash], "the price shock waits for the forest, the pattern does not")
        XCTAssertEqual(outcome.firedPatterns, [.flashCrash])
        XCTAssertTrue(outcome.flagged)
        XCTAssertEqual(anomalies.first?.description, "X flash_crash: fell 10.00% (z=21.1) then reverted to 95.0")
    }
}
