import Detection
import Foundation
import XCTest

import Ingest

/// The simulator: determinism, the trade format, the market's statistics, and the injected anomalies.
final class IngestSimulatorTests: XCTestCase {
    /// One generated trade, decoded enough for the checks below.
    struct Trade {
        var line: [UInt8]
        var symbolIndex: Int
        var timeMs: Int64
        var key: String
        var price: Double
        var quantity: Double
        var buy: Bool
    }

    /// Runs a simulator to the end and decodes every trade with Foundation's JSON parser.
    func generate(_ config: SimulatorConfig) throws -> (trades: [Trade], labels: [AnomalyLabel]) {
        var simulator = try MarketSimulator(config: config)
        var record = IngestRecord()
        var trades: [Trade] = []
        while simulator.next(into: &record) {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(record.line)) as? [String: Any])
            trades.append(Trade(
                line: record.line, symbolIndex: record.symbolIndex, timeMs: record.timeMs,
                key: String(decoding: record.key, as: UTF8.self),
                price: Double(object["p"] as? String ?? "") ?? .nan,
                quantity: Double(object["q"] as? String ?? "") ?? .nan,
                buy: (object["m"] as? Bool) == false))
        }
        return (trades, simulator.labels)
    }

    func config(seed: UInt64 = 7, rate: Double = 20, minutes: Int64, perKind: Int = 1) -> SimulatorConfig {
        var config = SimulatorConfig()
        config.seed = seed
        config.tradesPerSecond = rate
        config.durationMs = minutes * 60_000
        config.anomalies.perKind = perKind
        return config
    }

    func testSameSeedGivesIdenticalBytesAndDifferentSeedsDiffer() throws {
        func stream(_ config: SimulatorConfig) throws -> ([UInt8], [AnomalyLabel]) {
            var simulator = try MarketSimulator(config: config)
            var record = IngestRecord()
            var bytes: [UInt8] = []
            while simulator.next(into: &record) { bytes += record.line + [10] }
            return (bytes, simulator.labels)
        }
        let base = config(seed: 42, minutes: 30)
        let (first, firstLabels) = try stream(base)
        let (second, secondLabels) = try stream(base)
        XCTAssertGreaterThan(first.count, 1_000_000)
        XCTAssertEqual(first, second, "the same seed must reproduce the same bytes")
        XCTAssertEqual(firstLabels, secondLabels)

        var other = base
        other.seed = 43
        let (third, thirdLabels) = try stream(other)
        XCTAssertNotEqual(Array(first.prefix(10_000)), Array(third.prefix(10_000)))
        XCTAssertNotEqual(firstLabels, thirdLabels, "the anomaly schedule must depend on the seed too")
    }

    func testEveryLineIsABinanceTradeInEventTimeOrder() throws {
        let config = config(minutes: 30)
        var simulator = try MarketSimulator(config: config)
        var record = IngestRecord()
        var lastTime = Int64.min
        var lastID: [String: Int64] = [:]
        var count = 0
        while simulator.next(into: &record) {
            count += 1
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(record.line)) as? [String: Any],
                                       "line \(count) is not a JSON object")
            XCTAssertEqual(Set(object.keys), ["e", "E", "s", "t", "p", "q", "T", "m"])
            XCTAssertEqual(object["e"] as? String, "trade")
            let symbol = try XCTUnwrap(object["s"] as? String)
            let profile = try XCTUnwrap(config.symbols.first { $0.symbol == symbol })
            XCTAssertEqual(symbol, simulator.symbols[record.symbolIndex])
            XCTAssertEqual(String(decoding: record.key, as: UTF8.self), symbol)
            let time = try XCTUnwrap((object["T"] as? NSNumber)?.int64Value)
            XCTAssertEqual(time, record.timeMs)
            XCTAssertEqual((object["E"] as? NSNumber)?.int64Value, time + 1)
            XCTAssert((config.startMs..<config.endMs).contains(time))
            XCTAssertGreaterThanOrEqual(time, lastTime, "line \(count) goes back in event time")
            lastTime = time
            let id = try XCTUnwrap((object["t"] as? NSNumber)?.int64Value)
            if let previous = lastID[symbol] { XCTAssertEqual(id, previous + 1, "\(symbol) trade ids must increase by one") }
            lastID[symbol] = id
            let price = try XCTUnwrap(object["p"] as? String)
            let quantity = try XCTUnwrap(object["q"] as? String)
            XCTAssertGreaterThan(Double(price) ?? 0, 0, "price \(price)")
            XCTAssertGreaterThan(Double(quantity) ?? 0, 0, "quantity \(quantity)")
            XCTAssertEqual(price.split(separator: ".").last?.count, profile.priceDecimals, "price \(price) of \(symbol)")
            if profile.quantityDecimals > 0 {
                XCTAssertEqual(quantity.split(separator: ".").last?.count, profile.quantityDecimals)
            }
            XCTAssertNotNil(object["m"] as? Bool)
            if count > 100_000 { break }
        }
        XCTAssertGreaterThan(count, 30_000)
        XCTAssertEqual(Set(lastID.keys), Set(SymbolProfile.defaults.map(\.symbol)))
    }

    func testLabelsMatchTheConfiguredCountsAndNeverOverlapOnASymbol() throws {
        var config = config(rate: 5, minutes: 80, perKind: 3)
        config.anomalies.everyMs = 150_000
        let simulator = try MarketSimulator(config: config)
        let labels = simulator.labels
        var perKind: [AnomalyKind: Int] = [:]
        for label in labels { perKind[label.kind, default: 0] += 1 }
        XCTAssertEqual(perKind, Dictionary(uniqueKeysWithValues: SimulatorConfig.injectableKinds.map { ($0, 3) }))
        XCTAssertEqual(labels, labels.sorted { $0.startMs < $1.startMs })
        for label in labels {
            XCTAssertGreaterThanOrEqual(label.startMs, config.startMs + config.anomalies.warmupMs)
            XCTAssertLessThanOrEqual(label.endMs, config.endMs)
            XCTAssertLessThan(label.startMs, label.endMs)
        }
        for (index, label) in labels.enumerated() {
            for other in labels[(index + 1)...] where other.symbol == label.symbol {
                XCTAssertFalse(label.overlaps(other), "\(label) overlaps \(other)")
                XCTAssertGreaterThanOrEqual(other.startMs - label.endMs, config.anomalies.quietMs,
                                            "\(label.symbol) gets no quiet time between \(label.kind) and \(other.kind)")
            }
        }
    }

    func testALiquidityGapHasNoTradesOfItsSymbolInItsRange() throws {
        var config = config(minutes: 60, perKind: 2)
        config.anomalies.kinds = [.liquidityGap, .volumeSpike]
        let (trades, labels) = try generate(config)
        let gaps = labels.filter { $0.kind == .liquidityGap }
        XCTAssertEqual(gaps.count, 2)
        for gap in gaps {
            let ofSymbol = trades.filter { $0.key == gap.symbol }
            XCTAssertFalse(ofSymbol.contains { gap.contains(timeMs: $0.timeMs) }, "\(gap) has trades of its symbol")
            XCTAssertGreaterThanOrEqual(gap.endMs - gap.startMs, 90_000)
            let minuteBefore = ofSymbol.filter { (gap.startMs - 60_000..<gap.startMs).contains($0.timeMs) }
            XCTAssertGreaterThan(minuteBefore.count, 10, "\(gap.symbol) should trade often before its gap")
            XCTAssertTrue(trades.contains { $0.key != gap.symbol && gap.contains(timeMs: $0.timeMs) },
                          "other symbols keep trading")
        }
    }

    func testOverAnHourTheRateIsWithinTenPercentOfTheConfiguredOne() throws {
        var simulator = try MarketSimulator(config: SimulatorConfig())
        var record = IngestRecord()
        var perSymbol = [Int](repeating: 0, count: simulator.symbols.count)
        while simulator.next(into: &record) { perSymbol[record.symbolIndex] += 1 }
        let total = perSymbol.reduce(0, +)
        let expected = SimulatorConfig().tradesPerSecond * 3_600
        XCTAssertEqual(Double(total), expected, accuracy: expected * 0.10)
        for (index, count) in perSymbol.enumerated() {
            let share = simulator.symbolTradesPerSecond[index] * 3_600
            XCTAssertEqual(Double(count), share, accuracy: share * 0.20, "\(simulator.symbols[index])")
        }
    }

    func testTakerSidesAreBalancedButPersistent() throws {
        let (trades, _) = try generate(config(minutes: 20, perKind: 0))
        let buys = trades.filter(\.buy).count
        XCTAssertEqual(Double(buys) / Double(trades.count), 0.5, accuracy: 0.05)
        var previous: [Int: Bool] = [:]
        var repeats = 0
        for trade in trades {
            if previous[trade.symbolIndex] == trade.buy { repeats += 1 }
            previous[trade.symbolIndex] = trade.buy
        }
        // Repeating with probability 0.6, else a fair coin: 0.8 of trades repeat their predecessor's side.
        XCTAssertEqual(Double(repeats) / Double(trades.count), 0.8, accuracy: 0.05)
    }

    /// Each kind shows the move it is named for, measured against the 4 minutes before it.
    func testInjectedAnomaliesHaveDetectableMagnitudes() throws {
        try assertDetectableMagnitudes(seed: 11)
    }

    func assertDetectableMagnitudes(seed: UInt64) throws {
        let (trades, labels) = try generate(config(seed: seed, minutes: 55, perKind: 2))
        XCTAssertEqual(labels.count, 12)
        for label in labels {
            let ofSymbol = trades.filter { $0.key == label.symbol }
            let before = ofSymbol.filter { (label.startMs - 240_000..<label.startMs).contains($0.timeMs) }
            let during = ofSymbol.filter { label.contains(timeMs: $0.timeMs) }
            let after = ofSymbol.filter { (label.endMs..<label.endMs + 10_000).contains($0.timeMs) }
            let reference = try XCTUnwrap(before.last?.price)
            let span = Double(label.endMs - label.startMs)
            func volumeRate(_ trades: [Trade], over ms: Double) -> Double { trades.reduce(0) { $0 + $1.quantity } / ms }
            func variancePerMs(_ trades: [Trade], over ms: Double) -> Double {
                zip(trades, trades.dropFirst()).reduce(0) { $0 + pow(log($1.1.price / $1.0.price), 2) } / ms
            }
            let context = "\(label.kind.rawValue) on \(label.symbol) at \(label.startMs) (seed \(seed))"
            switch label.kind {
            case .priceShock:
                let moved = try abs(log(XCTUnwrap(after.last?.price) / reference))
                XCTAssertGreaterThan(moved, 0.025, context)
            case .volumeSpike:
                XCTAssertGreaterThan(volumeRate(during, over: span), 4 * volumeRate(before, over: 240_000), context)
                let drift = try abs(log(XCTUnwrap(during.last?.price) / reference))
                XCTAssertLessThan(drift, 0.01, context)
            case .flashCrash:
                let low = during.map(\.price).min() ?? reference
                XCTAssertLessThan(low / reference, 0.95, context)
                XCTAssertGreaterThan(try XCTUnwrap(during.last?.price) / low, 1.02, "\(context) recovers")
            case .pumpAndDump:
                let high = during.map(\.price).max() ?? reference
                XCTAssertGreaterThan(high / reference, 1.06, context)
                XCTAssertLessThan(try XCTUnwrap(during.last?.price) / high, 0.94, "\(context) dumps")
                XCTAssertGreaterThan(volumeRate(during, over: span), 3 * volumeRate(before, over: 240_000), context)
            case .volatilityBurst:
                XCTAssertGreaterThan(variancePerMs(during, over: span), 9 * variancePerMs(before, over: 240_000), context)
            case .liquidityGap:
                XCTAssertTrue(during.isEmpty, context)
            default:
                XCTFail("unexpected kind \(context)")
            }
        }
    }

    func testWriteFilesWritesTheStreamAndItsLabels() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-ingest-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let tradesURL = directory.appendingPathComponent("trades.jsonl")
        let labelsURL = directory.appendingPathComponent("labels.jsonl")
        let config = config(minutes: 30)

        var simulator = try MarketSimulator(config: config)
        let summary = try simulator.writeFiles(tradesPath: tradesURL.path, labelsPath: labelsURL.path)
        let (trades, labels) = try generate(config)

        let written = try String(contentsOf: tradesURL, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(written.last, "", "the file ends with a newline")
        XCTAssertEqual(written.dropLast().map { Array($0.utf8) }, trades.map(\.line))
        XCTAssertEqual(summary.trades, trades.count)
        XCTAssertEqual(summary.tradesPerSymbol.values.reduce(0, +), trades.count)
        XCTAssertEqual(summary.firstTimeMs, trades.first?.timeMs)
        XCTAssertEqual(summary.lastTimeMs, trades.last?.timeMs)
        XCTAssertFalse(summary.cancelled)

        let decoder = JSONDecoder()
        let labelLines = try String(contentsOf: labelsURL, encoding: .utf8).split(separator: "\n")
        let decoded = try labelLines.map { try decoder.decode(AnomalyLabel.self, from: Data($0.utf8)) }
        XCTAssertEqual(decoded, labels)
        XCTAssertEqual(summary.labels, labels.count)
        XCTAssertEqual(labels.count, 6)
        XCTAssertTrue(labelLines.first?.hasPrefix(#"{"symbol":""#) ?? false)
    }

    func testAScheduleThatDoesNotFitSaysWhatToChange() {
        let tooShort = config(minutes: 20, perKind: 3)
        XCTAssertThrowsError(try MarketSimulator(config: tooShort)) { error in
            let error = error as? IngestError
            XCTAssertEqual(error?.code, .scheduleDoesNotFit)
            XCTAssertTrue(error?.message.contains("lengthen the duration") ?? false, "\(String(describing: error))")
        }
    }

    func testInvalidSettingsAreNamed() {
        var zeroRate = config(minutes: 30)
        zeroRate.tradesPerSecond = 0
        XCTAssertThrowsError(try MarketSimulator(config: zeroRate)) { error in
            XCTAssertEqual((error as? IngestError)?.code, .invalidConfig)
            XCTAssertTrue("\(error)".contains("tradesPerSecond"), "\(error)")
        }
        var badSymbol = config(minutes: 30)
        badSymbol.symbols[0].symbol = "btc-usdt"
        XCTAssertThrowsError(try MarketSimulator(config: badSymbol)) { error in
            XCTAssertTrue("\(error)".contains("btc-usdt"), "\(error)")
        }
        var notInjectable = config(minutes: 30)
        notInjectable.anomalies.kinds = [.isolationOutlier]
        XCTAssertThrowsError(try MarketSimulator(config: notInjectable)) { error in
            XCTAssertTrue("\(error)".contains("isolation_outlier"), "\(error)")
        }
        var tooSlowForGaps = config(rate: 1, minutes: 60)
        tooSlowForGaps.anomalies.kinds = [.liquidityGap]
        XCTAssertThrowsError(try MarketSimulator(config: tooSlowForGaps)) { error in
            XCTAssertTrue("\(error)".contains("raise the trade rate"), "\(error)")
        }
    }

    /// A measurement, not a test of speed: prints the generation rate (a release build reaches
    /// well over 1 M trades/s; debug builds are several times slower).
    func testGenerationSpeedIsPrinted() throws {
        var config = SimulatorConfig()
        config.tradesPerSecond = 300
        config.durationMs = 1_800_000
        var simulator = try MarketSimulator(config: config)
        var record = IngestRecord()
        var bytes = 0
        let clock = ContinuousClock()
        let start = clock.now
        var count = 0
        while simulator.next(into: &record) {
            bytes += record.line.count
            count += 1
        }
        let seconds = (clock.now - start) / .seconds(1)
        XCTAssertGreaterThan(count, 450_000)
        print("simulator: \(count) trades, \(bytes / count) bytes each, \(Int(Double(count) / seconds)) trades/s")
    }
}
