import Foundation
import XCTest

@testable import Detection

/// Window features worked out by hand.
final class FeatureTests: XCTestCase {
    func testFeaturesOfOneWindow() throws {
        var d = Driver(testConfig(latenessMs: 0))
        d.trade("X", t: 1_000, p: "100", q: "1", m: false)  // taker buy
        d.trade("X", t: 5_000, p: "110", q: "2", m: true)  // taker sell
        d.trade("X", t: 25_000, p: "99", q: "1", m: false)
        d.trade("X", t: 41_000, p: "105", q: "0.5", m: false)
        d.trade("Y", t: 60_000, p: "1")  // watermark 60 000 closes X's [0, 60 000)
        let w = try XCTUnwrap(d.output.windows.first)
        XCTAssertEqual(d.output.windows.count, 1)
        XCTAssertEqual(w.symbol, "X")
        XCTAssertEqual(w.count, 4)
        XCTAssertEqual(w.baseVolume, 4.5)
        XCTAssertEqual(w.quoteVolume, 471.5)  // 100 + 220 + 99 + 52.5
        XCTAssertEqual(w.vwap, 471.5 / 4.5, accuracy: 1e-12)
        XCTAssertEqual([w.open, w.high, w.low, w.close], [100, 110, 99, 105])
        XCTAssertEqual(w.logReturn, log(1.05), accuracy: 1e-15)
        let squares = pow(log(110.0 / 100), 2) + pow(log(99.0 / 110), 2) + pow(log(105.0 / 99), 2)
        XCTAssertEqual(w.volatility, squares.squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(w.takerBuyRatio, 2.5 / 4.5, accuracy: 1e-15)
        XCTAssertEqual(w.largestTrade, 2)
        // Gaps: 0->1 000, 1 000->5 000, 5 000->25 000, 25 000->41 000, 41 000->60 000.
        XCTAssertEqual(w.longestGapMs, 20_000)
    }

    func testRushOrdersAreSameMillisecondSameSideRuns() throws {
        var d = Driver(testConfig(latenessMs: 0))
        d.trade("X", t: 1_000, p: "100", q: "1", m: false)
        d.trade("X", t: 1_000, p: "100.1", q: "2", m: false)  // a run of 2: a rush (3)
        d.trade("X", t: 1_000, p: "100.2", q: "0.5", m: false)  // longer: 3.5
        d.trade("X", t: 1_000, p: "100", q: "1", m: true)  // the other side: a new run
        d.trade("X", t: 2_000, p: "99.9", q: "4", m: true)  // another millisecond: a new run
        d.trade("X", t: 2_000, p: "99.9", q: "1", m: true)  // a second rush (5)
        d.trade("X", t: 3_000, p: "100", q: "1", m: true)
        d.trade("Y", t: 60_000, p: "1")
        let w = try XCTUnwrap(d.output.windows.first)
        XCTAssertEqual(w.count, 7)
        XCTAssertEqual(w.rushClusters, 2)
        XCTAssertEqual(try XCTUnwrap(w.rushVolumeShare), 8.5 / 10.5, accuracy: 1e-12)
    }

    func testRecentPaneVolume() throws {
        // Window [0, 60 000) of 20 s panes: the last pane is [40 000, 60 000).
        var d = Driver(testConfig(latenessMs: 0))
        d.trade("X", t: 1_000, p: "100", q: "1")
        d.trade("X", t: 45_000, p: "100", q: "2")
        d.trade("X", t: 59_999, p: "100", q: "3")
        var features = d.processor.states[0].closeWindow(start: 0, geometry: d.processor.geometry)
        XCTAssertEqual(features.recentQuoteVolume, 500)
        XCTAssertEqual(features.quoteVolume, 600)
        features = d.processor.states[0].closeWindow(start: 1, geometry: d.processor.geometry)
        XCTAssertEqual(features.recentQuoteVolume, 0, "window [20 000, 80 000): its last pane is empty")
    }

    func testOpenAndCloseFollowArrivalOrder() throws {
        var d = Driver(testConfig(latenessMs: 10_000))
        d.trade(t: 25_000, p: "100")  // arrives first (watermark 15 000)
        d.trade(t: 15_000, p: "90")  // arrives second, earlier in event time, on time
        d.trade(t: 70_000, p: "95")  // watermark 60 000 closes [0, 60 000)
        let w = try XCTUnwrap(d.output.windows.first)
        XCTAssertEqual([w.startMs, w.count], [0, 2])
        XCTAssertEqual([w.open, w.close, w.high, w.low], [100, 90, 100, 90])
        XCTAssertEqual(w.logReturn, log(0.9), accuracy: 1e-15)
        XCTAssertEqual(w.volatility, abs(log(0.9)), accuracy: 1e-15)
        XCTAssertEqual(w.longestGapMs, 35_000)  // 25 000 -> 60 000
    }

    func testZeroQuantityTradesKeepVWAPFinite() throws {
        var d = Driver(testConfig(latenessMs: 0))
        d.trade(t: 0, p: "100", q: "0")
        d.trade(t: 60_000, p: "100", q: "0")
        let w = try XCTUnwrap(d.output.windows.first)
        XCTAssertEqual(w.count, 1)
        XCTAssertEqual(w.vwap, 100, "no volume: the close")
        XCTAssertEqual(w.takerBuyRatio, 0.5)
    }

    func testPaneCombinationMatchesASingleWindowRecomputation() {
        // Sliding windows built from panes equal features recomputed from the raw trades.
        var d = Driver(testConfig(latenessMs: 0, minHistory: 1))
        var rng = SplitMix64(seed: 3)
        var trades: [(t: Int64, p: Double, q: Double)] = []
        var t: Int64 = 0
        var price = 100.0
        for _ in 0..<400 {
            t += Int64.random(in: 0...3_000, using: &rng)
            price = (price * (1 + Double.random(in: -0.002...0.002, using: &rng)) * 100).rounded() / 100
            let q = Double(Int.random(in: 1...500, using: &rng)) / 100
            trades.append((t, price, q))
            d.trade(t: t, p: formatFixed(price, decimals: 2), q: formatFixed(q, decimals: 2))
        }
        XCTAssertGreaterThan(d.output.windows.count, 10)
        for w in d.output.windows {
            let inside = trades.filter { $0.t >= w.startMs && $0.t < w.endMs }
            XCTAssertEqual(w.count, Int64(inside.count))
            guard let first = inside.first, let last = inside.last else { continue }
            XCTAssertEqual(w.open, first.p)
            XCTAssertEqual(w.close, last.p)
            XCTAssertEqual(w.baseVolume, inside.reduce(0) { $0 + $1.q }, accuracy: 1e-9)
            var squares = 0.0
            for i in inside.indices.dropFirst() { squares += pow(log(inside[i].p / inside[i - 1].p), 2) }
            XCTAssertEqual(w.volatility, squares.squareRoot(), accuracy: 1e-12)
            var gap = first.t - w.startMs
            for i in inside.indices.dropFirst() { gap = max(gap, inside[i].t - inside[i - 1].t) }
            gap = max(gap, w.endMs - last.t)
            XCTAssertEqual(w.longestGapMs, gap)
        }
    }

    func testFormatting() {
        XCTAssertEqual(formatFixed(-2.3149, decimals: 2), "-2.31")
        XCTAssertEqual(formatFixed(-0.001, decimals: 2), "0.00")
        XCTAssertEqual(formatFixed(1234.56, decimals: 1), "1234.6")
        XCTAssertEqual(formatFixed(0.05, decimals: 2), "0.05")
        XCTAssertEqual(formatFixed(2, decimals: 0), "2")
        XCTAssertEqual(formatFixed(7.9, decimals: 1), "7.9")
        XCTAssertEqual(formatFixed(.infinity, decimals: 1), "inf")
        XCTAssertEqual(floorDivide(-1, 20_000), -1)
        XCTAssertEqual(floorDivide(-20_000, 20_000), -1)
        XCTAssertEqual(floorDivide(-20_001, 20_000), -2)
        XCTAssertEqual(floorDivide(19_999, 20_000), 0)
    }
}

final class BaselineTests: XCTestCase {
    func testMedianMADAndFloors() {
        let spiky = RobustEstimate([1, 2, 3, 4, 100], absoluteFloor: 1e-4, relativeFloor: 0.1)
        XCTAssertEqual(spiky.median, 3)
        XCTAssertEqual(spiky.mad, 1)  // deviations 2, 1, 0, 1, 97
        XCTAssertEqual(spiky.scale, 1.4826)
        let even = RobustEstimate([4, 1, 3, 2], absoluteFloor: 1e-4, relativeFloor: 0.1)
        XCTAssertEqual(even.median, 2.5)
        XCTAssertEqual(even.mad, 1)  // deviations 1.5, 0.5, 0.5, 1.5
        let flat = RobustEstimate([0, 0, 0, 0], absoluteFloor: 1e-4, relativeFloor: 0.1)
        XCTAssertEqual(flat.scale, 1e-4, "absolute floor: no infinite z-scores")
        XCTAssertEqual(flat.zScore(0.001), 10, accuracy: 1e-9)
        let steady = RobustEstimate([0.002, 0.002, 0.002], absoluteFloor: 1e-4, relativeFloor: 0.1)
        XCTAssertEqual(steady.scale, 0.0002, accuracy: 1e-18, "relative floor: 10% of the median")
        XCTAssertEqual(RobustEstimate.median([]), 0)
    }

    func testBaselineKeepsTheLastWindowsOldestFirst() {
        var baseline = Baseline(capacity: 3)
        for n in 1...5 {
            baseline.append(WindowFeatures.empty(carriedClose: Double(n), windowMs: 1))
        }
        XCTAssertEqual(baseline.count, 3)
        XCTAssertEqual(baseline.windows.map(\.close), [3, 4, 5])
        XCTAssertEqual(baseline.statistics().windows, 3)
        baseline.reset()
        XCTAssertEqual(baseline.count, 0)
    }
}
