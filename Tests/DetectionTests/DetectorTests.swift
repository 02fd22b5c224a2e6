import Foundation
import XCTest

@testable import Detection

/// Detectors, policy, severity, quality and cooldown. End-to-end cases use tumbling 1 s
/// windows (window = slide = 1 000 ms, no lateness) so every number is easy to follow.
final class DetectorTests: XCTestCase {
    private func tumbling(
        baseline: Int = 4, minHistory: Int = 4, z: Double = 3.5, volume: Double = 3.0,
        policy: DetectionConfig.Policy = .any, cooldownMs: Int64 = 0
    ) -> DetectionConfig {
        testConfig(
            windowMs: 1_000, slideMs: 1_000, latenessMs: 0, baselineWindows: baseline,
            minHistory: minHistory, z: z, volume: volume, policy: policy, cooldownMs: cooldownMs)
    }

    /// Sends window `index`'s trades, 100 ms apart.
    private func window(_ d: inout Driver, _ index: Int64, prices: [String], q: String = "1", symbol: String = "BTCUSDT") {
        for (j, price) in prices.enumerated() {
            d.trade(symbol, t: index * 1_000 + Int64(j) * 100, p: price, q: q)
        }
    }

    private let flat = ["100", "100", "100", "100", "100"]

    /// Four flat windows, then window 4 rising 2% on its last trade, closed by a trade at 5 000.
    private func priceShockRun(_ config: DetectionConfig) -> Driver {
        var d = Driver(config)
        for i in 0..<4 { window(&d, Int64(i), prices: flat) }
        window(&d, 4, prices: ["100", "100", "100", "100", "102"])
        d.trade(t: 5_000, p: "102")
        return d
    }

    func testPriceShockAgainstAFlatBaseline() throws {
        let d = priceShockRun(tumbling())
        XCTAssertEqual(d.output.windows.count, 5)
        XCTAssertEqual(d.output.anomalies.map(\.kind), [.priceShock, .volatilityShock])
        let a = try XCTUnwrap(d.output.anomalies.first)
        let r = log(1.02)
        XCTAssertEqual(a.id, Anomaly.makeID(symbol: "BTCUSDT", windowStartMs: 4_000, kind: .priceShock))
        XCTAssertEqual(a.symbol, "BTCUSDT")
        XCTAssertEqual([a.windowStartMs, a.windowEndMs, a.detectedAtMs], [4_000, 5_000, 5_000])
        XCTAssertEqual(a.value, r, accuracy: 1e-15)
        XCTAssertEqual(a.expected, 0)
        // Flat baseline: MAD 0, so the scale is the 1 bp floor: z = ln(1.02) / 1e-4 = 198.03.
        XCTAssertEqual(try XCTUnwrap(a.scores["z_return"]), r / 1e-4, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(a.scores["z_volatility"]), r / 1e-4, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(a.scores["volume_ratio"]), 502.0 / 500, accuracy: 1e-12)
        XCTAssertEqual(a.severity, .critical)
        XCTAssertEqual(a.quality, .medium, "two z-scores are one family; 198 / 3.5 is past 1.5x")
        XCTAssertFalse(a.suppressed)
        XCTAssertEqual(a.partition, 0)
        XCTAssertEqual(a.offset, 25, "the record whose arrival closed the window")
        XCTAssertEqual(a.description, "BTCUSDT price_shock: return 1.98% vs median 0.00% (z=198.0)")
        XCTAssertEqual(d.output.anomalies[1].description, "BTCUSDT volatility_shock: volatility 1.98% vs median 0.00% (z=198.0)")
        XCTAssertEqual(d.processor.stats.anomalies, 2)
    }

    func testPriceShockAgainstAMovingBaselineUsesMAD() throws {
        var d = Driver(tumbling())
        let closes = ["100.1", "99.9", "100.2", "99.8"]
        for (i, close) in closes.enumerated() { window(&d, Int64(i), prices: ["100", close]) }
        window(&d, 4, prices: ["100", "101"])
        d.trade(t: 5_000, p: "101")
        let returns = [log(1.001), log(0.999), log(1.002), log(0.998)].sorted()
        let median = (returns[1] + returns[2]) / 2
        let deviations = returns.map { abs($0 - median) }.sorted()
        let scale = 1.4826 * (deviations[1] + deviations[2]) / 2
        let expectedZ = (log(1.01) - median) / scale
        XCTAssertEqual(expectedZ, 4.48, accuracy: 0.01, "by hand: 0.00995 / (1.4826 * 0.0015)")
        let shock = try XCTUnwrap(d.output.anomalies.first { $0.kind == .priceShock })
        XCTAssertEqual(try XCTUnwrap(shock.scores["z_return"]), expectedZ, accuracy: 1e-9)
        XCTAssertEqual(shock.expected, median, accuracy: 1e-15)
        XCTAssertEqual(shock.severity, .low, "4.48 / 3.5 = 1.28x the threshold")
    }

    func testNoAlertDuringWarmUp() {
        var d = Driver(tumbling(minHistory: 4))
        for i in 0..<3 { window(&d, Int64(i), prices: flat) }
        window(&d, 3, prices: ["100", "100", "100", "100", "102"])  // only 3 windows of history
        window(&d, 4, prices: flat)
        window(&d, 5, prices: ["100", "100", "100", "100", "102"])
        d.trade(t: 6_000, p: "100")
        XCTAssertEqual(Set(d.output.anomalies.map(\.windowStartMs)), [5_000])
    }

    func testWindowIsComparedBeforeJoiningTheBaseline() throws {
        var d = Driver(tumbling(baseline: 2, minHistory: 2))
        window(&d, 0, prices: flat)
        window(&d, 1, prices: flat)
        window(&d, 2, prices: flat, q: "4")
        d.trade(t: 3_000, p: "100")
        let spike = try XCTUnwrap(d.output.anomalies.first)
        XCTAssertEqual(spike.kind, .volumeSpike)
        XCTAssertEqual(spike.expected, 500, "the median of windows 0 and 1, not of 1 and 2 (1 250)")
        XCTAssertEqual(spike.value, 2_000)
    }

    func testVolumeSpike() throws {
        var d = Driver(tumbling(policy: .volume))
        for i in 0..<4 { window(&d, Int64(i), prices: flat) }
        window(&d, 4, prices: flat, q: "4")  // quote 2 000 vs median 500: ratio 4
        window(&d, 5, prices: flat, q: "5")  // baseline 500, 500, 500, 2 000: median 500, ratio 5
        d.trade(t: 6_000, p: "100")
        XCTAssertEqual(d.output.anomalies.map(\.kind), [.volumeSpike, .volumeSpike])
        let first = d.output.anomalies[0]
        XCTAssertEqual([first.value, first.expected], [2_000, 500])
        XCTAssertEqual(try XCTUnwrap(first.scores["volume_ratio"]), 4)
        XCTAssertEqual(first.scores["z_return"], 0)
        XCTAssertEqual(first.severity, .low, "4 / 3 = 1.33x")
        XCTAssertEqual(first.quality, .high, "the volume z-score agrees (reported or not, agreement is evidence)")
        XCTAssertEqual(first.description, "BTCUSDT volume_spike: quote volume 2000.00 vs median 500.00 (4.0x, 5 trades)")
        let second = d.output.anomalies[1]
        XCTAssertEqual(second.severity, .medium, "5 / 3 = 1.67x")
    }

    func testVolumeZScore() throws {
        // A flat baseline of ln(501): MAD 0, so the scale is the 0.1 floor. Window 4 trades 2 000:
        // z = (ln 2 001 - ln 501) / 0.1 = 13.85, 3.96x the threshold, beating the ratio's 1.33x.
        var d = Driver(tumbling(policy: .any))
        for i in 0..<4 { window(&d, Int64(i), prices: flat) }
        window(&d, 4, prices: flat, q: "4")
        d.trade(t: 5_000, p: "100")
        let spike = try XCTUnwrap(d.output.anomalies.first)
        XCTAssertEqual(d.output.anomalies.map(\.kind), [.volumeSpike], "one anomaly per kind and window")
        XCTAssertEqual(try XCTUnwrap(spike.scores["z_volume"]), (log(2_001.0) - log(501)) / 0.1, accuracy: 1e-9)
        XCTAssertEqual(spike.severity, .critical)
        XCTAssertEqual(spike.quality, .high)
        XCTAssertEqual(spike.description, "BTCUSDT volume_spike: quote volume 2000.00 vs median 500.00 (z=13.8, 5 trades)")
    }

    func testVolumeSpikeNeedsMinimumTrades() {
        func run(minTrades: Int?) -> [Anomaly] {
            var config = tumbling()
            config.volumeSpikeMinTrades = minTrades
            var d = Driver(config)
            for i in 0..<4 { window(&d, Int64(i), prices: flat) }
            window(&d, 4, prices: ["100"], q: "20")  // one trade, quote 2 000: ratio 4
            d.trade(t: 5_000, p: "100")
            return d.output.anomalies
        }
        XCTAssertTrue(run(minTrades: nil).isEmpty, "one trade in a quiet market is not a spike (default 5)")
        XCTAssertEqual(run(minTrades: 1).map(\.kind), [.volumeSpike])
    }

    func testNoVolumeRatioAgainstADeadBaseline() {
        var d = Driver(tumbling())
        window(&d, 0, prices: flat)
        d.trade("OTHER", t: 5_000, p: "1")  // closes BTCUSDT windows 0 ... 4 (1 ... 4 empty)
        window(&d, 5, prices: Array(repeating: "100", count: 10))
        d.trade("OTHER", t: 6_500, p: "1")
        XCTAssertEqual(d.output.windows.filter { $0.symbol == "BTCUSDT" }.count, 6)
        XCTAssertTrue(d.output.anomalies.isEmpty, "median quote volume 0: no ratio, no alert")
    }

    func testPolicies() {
        func kinds(_ policy: DetectionConfig.Policy) -> [AnomalyKind] {
            priceShockRun(tumbling(policy: policy)).output.anomalies.map(\.kind)
        }
        XCTAssertEqual(kinds(.any), [.priceShock, .volatilityShock])
        XCTAssertEqual(kinds(.zscore), [.priceShock, .volatilityShock])
        XCTAssertEqual(kinds(.filtered), [], "five windows: no forest yet, so nothing confirms the z-scores")
        XCTAssertEqual(kinds(.volume), [])
        XCTAssertEqual(kinds(.isolationForest), [])
        XCTAssertEqual(kinds(.patterns), [])

        var overridden = tumbling(policy: .any)
        overridden.symbols["BTCUSDT"] = .init(policy: .volume)
        XCTAssertEqual(priceShockRun(overridden).output.anomalies, [])
        var strict = tumbling()
        strict.symbols["BTCUSDT"] = .init(zScoreThreshold: 300)
        XCTAssertEqual(priceShockRun(strict).output.anomalies, [], "per-symbol threshold above z = 198")
    }

    func testCooldownSuppressesRepeatsInEventTime() {
        var d = Driver(tumbling(baseline: 12, minHistory: 4, cooldownMs: 2_000))
        for i in 0..<6 { window(&d, Int64(i), prices: flat) }
        for i in 6..<10 {
            let up = i % 2 == 0
            window(&d, Int64(i), prices: up ? ["100", "100", "100", "100", "102"] : ["102", "102", "102", "102", "100"])
        }
        d.trade(t: 10_000, p: "100")
        let shocks = d.output.anomalies.filter { $0.kind == .priceShock }
        XCTAssertEqual(shocks.map(\.windowEndMs), [7_000, 8_000, 9_000, 10_000])
        XCTAssertEqual(Set(shocks.map(\.severity)), [.critical], "every swing is 2 %, z ~ 198")
        // 8 000 is 1 000 after the alert at 7 000; 9 000 is 2 000 after it (not < 2 000); 10 000 follows 9 000.
        XCTAssertEqual(shocks.map(\.suppressed), [false, true, false, true])
        let volatility = d.output.anomalies.filter { $0.kind == .volatilityShock }
        XCTAssertEqual(volatility.map(\.suppressed), [false, true, false, true], "each kind has its own cooldown")
        XCTAssertEqual(d.processor.stats.suppressed, 4)
    }

    // MARK: - Evaluator, with hand-made features and baselines

    private let baseline = BaselineStatistics(
        windows: 12,
        logReturn: RobustEstimate(median: 0, mad: 0, scale: 0.125),  // exact in binary
        volatility: RobustEstimate(median: 0.001, mad: 0, scale: 0.001),
        logCount: RobustEstimate(median: log(11), mad: 0, scale: 0.5),
        logQuoteVolume: RobustEstimate(median: log(1_001), mad: 0, scale: 0.5),
        medianQuoteVolume: 1_000, medianTradeCount: 10, medianLongestGapMs: 6_000)

    private func features(
        logReturn: Double = 0, volatility: Double = 0.001, quote: Double = 1_000, count: Int64 = 10, recentQuote: Double? = nil
    ) -> WindowFeatures {
        // A straight move from 100 to 100 * e^logReturn: the range is the return.
        let close = 100 * exp(logReturn)
        return WindowFeatures(
            count: count, baseVolume: quote / 100, quoteVolume: quote, vwap: 100, open: 100, high: max(100, close),
            low: min(100, close), close: close, logReturn: logReturn, volatility: volatility, takerBuyRatio: 0.5,
            largestTrade: 1, longestGapMs: 100, recentQuoteVolume: recentQuote ?? quote / 3)
    }

    private func evaluate(
        _ window: WindowFeatures, z: Double = 4, policy: DetectionConfig.Policy = .any, baseline: BaselineStatistics? = nil,
        isolationScore: Double? = nil
    ) -> [Anomaly] {
        var config = testConfig(z: z, volume: 3, policy: policy)
        config.severityCuts = .init()
        var cooldowns = Cooldowns()
        var anomalies: [Anomaly] = []
        let input = DetectorInput(
            window: window, baseline: baseline ?? self.baseline, settings: SymbolSettings(config: config, symbol: "BTCUSDT"),
            windowMs: 60_000, panesPerWindow: 3, isolationScore: isolationScore, patterns: PatternMemory(), endMs: 60_000)
        _ = WindowEvaluator.evaluate(
            input, cooldowns: &cooldowns,
            context: .init(symbol: "BTCUSDT", startMs: 0, endMs: 60_000, detectedAtMs: 60_000, partition: 3, offset: 9),
            into: &anomalies)
        return anomalies
    }

    func testSeverityAndQualityByMagnitude() throws {
        // z = logReturn / 0.125 against threshold 4.
        let cases: [(Double, Severity, Quality)] = [
            (0.625, .low, .low),  // z 5: 1.25x
            (0.8125, .medium, .medium),  // z 6.5: 1.625x
            (-1.125, .high, .medium),  // z -9: 2.25x
            (1.5, .critical, .medium),  // z 12: 3x
        ]
        for (logReturn, severity, quality) in cases {
            let anomalies = evaluate(features(logReturn: logReturn))
            XCTAssertEqual(anomalies.count, 1, "\(logReturn)")
            let a = try XCTUnwrap(anomalies.first)
            XCTAssertEqual(a.kind, .priceShock)
            XCTAssertEqual(a.severity, severity, "\(logReturn)")
            XCTAssertEqual(a.quality, quality, "\(logReturn)")
            XCTAssertEqual([a.partition], [3])
            XCTAssertEqual(a.offset, 9)
        }
        XCTAssertTrue(evaluate(features(logReturn: 0.4999)).isEmpty, "z 3.9992 < 4")
        XCTAssertEqual(evaluate(features(logReturn: 0.5)).count, 1, "z exactly at the threshold fires")
    }

    func testQualityComesFromAgreementBetweenFamilies() {
        let sameFamily = evaluate(features(logReturn: 0.625, volatility: 0.006))  // z 5 and z 5, both z-scores
        XCTAssertEqual(sameFamily.map(\.kind), [.priceShock, .volatilityShock])
        XCTAssertEqual(sameFamily.map(\.quality), [.low, .low], "one family: 1.25x is under the 1.5x of medium")
        XCTAssertEqual(sameFamily.map(\.severity), [.low, .low])
        let viaVolume = evaluate(features(logReturn: 0.625, quote: 3_200), policy: .zscore)
        XCTAssertEqual(viaVolume.map(\.kind), [.priceShock])
        XCTAssertEqual(viaVolume.first?.quality, .high, "agreement counts even when the policy hides the other")
        let viaForest = evaluate(features(logReturn: 0.625), isolationScore: 0.7)
        XCTAssertEqual(viaForest.map(\.kind), [.priceShock, .isolationOutlier])
        XCTAssertEqual(viaForest.map(\.quality), [.high, .high])
    }

    func testFilteredNeedsTheForestToAgree() {
        // z = 5 against threshold 4; the forest threshold is 0.55 by default.
        XCTAssertEqual(evaluate(features(logReturn: 0.625), policy: .filtered).map(\.kind), [], "no forest yet")
        XCTAssertEqual(evaluate(features(logReturn: 0.625), policy: .filtered, isolationScore: 0.54).map(\.kind), [])
        let agreed = evaluate(features(logReturn: 0.625), policy: .filtered, isolationScore: 0.55)
        XCTAssertEqual(agreed.map(\.kind), [.priceShock], "the forest's vote is not itself an anomaly under filtered")
        XCTAssertEqual(agreed.first?.quality, .high)
        XCTAssertEqual(evaluate(features(quote: 3_200), policy: .filtered, isolationScore: 0.6).map(\.kind), [.volumeSpike])
        XCTAssertEqual(evaluate(features(), policy: .isolationForest, isolationScore: 0.6).map(\.kind), [.isolationOutlier])
        let outlier = evaluate(features(), policy: .any, isolationScore: 0.66)
        XCTAssertEqual(outlier.first?.severity, .low, "0.66 / 0.55 = 1.2x")
        XCTAssertEqual(outlier.first?.scores["isolation"], 0.66)
    }

    func testTradeCountZScore() throws {
        // ln(1 + 33) - ln(11) = 1.1394; scale 0.5: z = 2.28 (no); ln(1 + 99) - ln(11) = 2.2073: z = 4.41 (yes).
        XCTAssertEqual(evaluate(features(count: 33), policy: .zscore).map(\.kind), [])
        let spike = try XCTUnwrap(evaluate(features(count: 99), policy: .zscore).first)
        XCTAssertEqual(spike.kind, .tradeCountSpike)
        XCTAssertEqual(try XCTUnwrap(spike.scores["z_count"]), (log(100) - log(11)) / 0.5, accuracy: 1e-12)
        XCTAssertEqual(spike.value, 99)
        XCTAssertEqual(spike.expected, 10)
        XCTAssertEqual(evaluate(features(count: 0), policy: .zscore).map(\.kind), [], "upward only")
    }

    func testRecentPaneVolumeSpike() throws {
        // Window quote 2 000 (ratio 2, under 3); its last pane holds 1 500 against a pane share of
        // 1 000 / 3 = 333.3: ratio 4.5, exactly 1.5 x 3.
        let anomalies = evaluate(features(quote: 2_000, recentQuote: 1_500), policy: .volume)
        let spike = try XCTUnwrap(anomalies.first)
        XCTAssertEqual(anomalies.count, 1, "one anomaly per kind, the stronger finding")
        XCTAssertEqual(spike.kind, .volumeSpike)
        XCTAssertEqual(try XCTUnwrap(spike.scores["recent_volume_ratio"]), 4.5, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(spike.scores["volume_ratio"]), 2)
        XCTAssertEqual(spike.value, 1_500)
        XCTAssertEqual(evaluate(features(quote: 2_000, recentQuote: 1_400), policy: .volume), [], "ratio 4.2 < 4.5")
        // Both fire: the window ratio 6 / 3 = 2x beats the pane's 6 / 4.5 = 1.33x.
        let both = try XCTUnwrap(evaluate(features(quote: 6_000, recentQuote: 2_000), policy: .volume).first)
        XCTAssertEqual(both.value, 6_000)
        XCTAssertEqual(both.severity, .high)
    }

    func testVolatilityFiresUpwardOnly() {
        XCTAssertTrue(evaluate(features(volatility: 0)).isEmpty)
        let calm = BaselineStatistics(
            windows: 12, logReturn: baseline.logReturn, volatility: RobustEstimate(median: 0.01, mad: 0, scale: 0.001),
            logCount: baseline.logCount, logQuoteVolume: baseline.logQuoteVolume, medianQuoteVolume: 1_000, medianTradeCount: 10,
            medianLongestGapMs: 6_000)
        XCTAssertTrue(evaluate(features(volatility: 0), baseline: calm).isEmpty, "z = -10: calm is not a shock")
    }

    func testDescriptionFormat() throws {
        let b = BaselineStatistics(
            windows: 12, logReturn: RobustEstimate(median: 0.0001, mad: 0, scale: 0.0232 / 7.9),
            volatility: baseline.volatility, logCount: baseline.logCount, logQuoteVolume: baseline.logQuoteVolume,
            medianQuoteVolume: 1_000, medianTradeCount: 10, medianLongestGapMs: 6_000)
        let a = try XCTUnwrap(evaluate(features(logReturn: -0.0231), baseline: b).first)
        XCTAssertEqual(a.description, "BTCUSDT price_shock: return -2.31% vs median 0.01% (z=-7.9)")
    }

    func testSeverityCutsAreConfigurable() {
        let cuts = DetectionConfig.SeverityCuts()
        XCTAssertEqual([1.0, 1.49, 1.5, 1.99, 2, 2.99, 3, 50].map(cuts.severity(magnitude:)),
                       [.low, .low, .medium, .medium, .high, .high, .critical, .critical])
        let custom = DetectionConfig.SeverityCuts(medium: 2, high: 4, critical: 8)
        XCTAssertEqual([1.9, 2, 4, 8].map(custom.severity(magnitude:)), [.low, .medium, .high, .critical])
        var config = DetectionConfig()
        XCTAssertEqual(config.effectiveSeverityCuts, cuts)
        config.severityCuts = custom
        XCTAssertEqual(SymbolSettings(config: config, symbol: "X").severityCuts, custom)
    }

    func testCooldownBookkeeping() {
        var c = Cooldowns()
        let cooldown: Int64 = 120_000
        func suppressed(_ kind: AnomalyKind, _ end: Int64, _ severity: Severity = .medium) -> Bool {
            c.isSuppressed(kind: kind, severity: severity, windowEndMs: end, cooldownMs: cooldown)
        }
        XCTAssertFalse(suppressed(.priceShock, 60_000))
        XCTAssertTrue(suppressed(.priceShock, 80_000))
        XCTAssertFalse(suppressed(.volumeSpike, 80_000), "per kind")
        XCTAssertTrue(suppressed(.priceShock, 179_999))
        XCTAssertFalse(suppressed(.priceShock, 180_000), "measured from the last alert")
        XCTAssertTrue(suppressed(.priceShock, 200_000))
        XCTAssertTrue(suppressed(.priceShock, 210_000, .low), "a lesser repeat stays quiet")
        XCTAssertFalse(suppressed(.priceShock, 220_000, .critical), "an escalation alerts at once ...")
        XCTAssertTrue(suppressed(.priceShock, 240_000, .high), "... and becomes the alert repeats are measured from")
        XCTAssertFalse(suppressed(.priceShock, 340_000, .low), "340 000 - 220 000 = 120 000: cooled down")
    }

    func testConfigDecodesWithoutTheNewOptionalFields() throws {
        let encoded = try JSONEncoder().encode(DetectionConfig())
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: encoded) as? [String: Any])
        object["severityCuts"] = nil
        object["volumeSpikeMinTrades"] = nil
        let decoded = try JSONDecoder().decode(DetectionConfig.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(decoded, DetectionConfig())
        XCTAssertEqual(decoded.effectiveVolumeSpikeMinTrades, 5)
    }
}
