import Foundation
import XCTest

@testable import Detection

/// Hostile market data: records that are not UTF-8, mutated real trades, huge lines, and trades
/// that parse but claim absurd things (`DetectionConfig.InputLimits`). Nothing crashes, nothing
/// is applied that should not be, and every reject is counted and recorded.
final class SecurityHostileInputTests: XCTestCase {
    private func parseError(_ bytes: [UInt8]) -> TradeParseError? {
        do {
            _ = try TradeParser.parse(bytes)
            return nil
        } catch {
            return error
        }
    }

    private func record(_ note: [UInt8]) -> [UInt8] {
        Array(#"{"e":"trade","note":""#.utf8) + note + Array(#"","s":"BTCUSDT","p":"1","q":"1","T":1}"#.utf8)
    }

    // MARK: - Parser

    func testStringsMustBeUTF8EvenWhenSkipped() {
        for valid in ["é", "日本", "😀", "\u{10FFFF}", "\u{7FF}\u{800}\u{FFFF}"] {
            XCTAssertNil(parseError(record(Array(valid.utf8))), "\(valid) is valid UTF-8")
        }
        let invalid: [(String, [UInt8])] = [
            ("lone continuation byte", [0x80]),
            ("overlong slash", [0xC0, 0xAF]),
            ("overlong three-byte", [0xE0, 0x80, 0xAF]),
            ("UTF-16 surrogate", [0xED, 0xA0, 0x80]),
            ("above U+10FFFF", [0xF4, 0x90, 0x80, 0x80]),
            ("0xFF", [0xFF]),
            ("lead byte then ASCII", [0xE2, 0x41, 0x41]),
            ("sequence cut by the closing quote", [0xE2, 0x82]),
        ]
        for (name, bytes) in invalid {
            XCTAssertEqual(parseError(record(bytes))?.code, .invalidUTF8, name)
        }
        XCTAssertEqual(parseError(Array(#"{""#.utf8) + [0xC3] + Array(#"":1,"s":"A","p":1,"q":1,"T":1}"#.utf8))?.code, .invalidUTF8,
                       "a one-byte key that is not UTF-8")
        XCTAssertEqual(parseError(record([0xC3]) )?.reason.hasPrefix("invalid UTF-8 at byte"), true)
    }

    func testMutatedRealTradesNeverCrashAndNeverYieldImpossibleValues() throws {
        let lines = try RealData.lines(RealData.spot).prefix(2_000)
        var random = SplitMix64(seed: 8)
        var parsed = 0
        var rejected = 0
        for round in 0..<40_000 {
            var bytes = lines[lines.index(lines.startIndex, offsetBy: round % lines.count)]
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let position = Int.random(in: 0..<max(bytes.count, 1), using: &random)
                switch Int.random(in: 0..<5, using: &random) {
                case 0: if !bytes.isEmpty { bytes[position] = UInt8.random(in: 0...255, using: &random) }
                case 1: if !bytes.isEmpty { bytes.remove(at: position) }
                case 2: bytes.insert(UInt8.random(in: 0...255, using: &random), at: min(position, bytes.count))
                case 3: bytes = Array(bytes.prefix(position))
                default: bytes.insert(contentsOf: [UInt8](repeating: UInt8(ascii: "["), count: 70), at: min(position, bytes.count))
                }
            }
            do {
                let trade = try TradeParser.parse(bytes)
                parsed += 1
                XCTAssertTrue(trade.price > 0 && trade.price.isFinite, "price \(trade.price) from \(String(decoding: bytes, as: UTF8.self))")
                XCTAssertTrue(trade.quantity >= 0 && trade.quantity.isFinite)
                XCTAssertNotNil(SymbolKey(trade.symbol.string), "a parsed symbol is a valid symbol")
            } catch {
                rejected += 1
                XCTAssertFalse(error.reason.isEmpty)
            }
        }
        XCTAssertGreaterThan(parsed, 1_000, "some mutations keep a valid trade")
        XCTAssertGreaterThan(rejected, 20_000)
    }

    func testHugeRecordsAreParsedOrRefusedWholeWithoutTrouble() {
        let padding = [UInt8](repeating: UInt8(ascii: "x"), count: 8 << 20)
        let huge = Array(#"{"pad":""#.utf8) + padding + Array(#"","s":"BTCUSDT","p":"2.5","q":"1","T":1700000000000}"#.utf8)
        XCTAssertEqual(try TradeParser.parse(huge).price, 2.5, "an 8 MiB unknown field is skipped")
        let spaces = [UInt8](repeating: UInt8(ascii: " "), count: 8 << 20)
        XCTAssertEqual(parseError(spaces)?.code, .empty)
        let deep = [UInt8](repeating: UInt8(ascii: "["), count: 1 << 20)
        XCTAssertEqual(parseError(Array(#"{"x":"#.utf8) + deep)?.code, .nestingTooDeep)
        let digits = [UInt8](repeating: UInt8(ascii: "9"), count: 1 << 20)
        XCTAssertEqual(parseError(Array(#"{"s":"A","q":1,"T":1,"p":"#.utf8) + digits + [UInt8(ascii: "}")])?.code, .numberTooLarge)
    }

    // MARK: - Input limits

    private func limitedConfig(_ change: (inout DetectionConfig.InputLimits) -> Void = { _ in }) -> DetectionConfig {
        var config = testConfig(latenessMs: 1_000)
        var limits = DetectionConfig.InputLimits()
        change(&limits)
        config.inputLimits = limits
        return config
    }

    private let start: Int64 = 1_700_000_000_000

    func testAbsurdTimesPricesAndQuantitiesAreRejectedAndChangeNothing() {
        var driver = Driver(limitedConfig())
        driver.send(tradeJSON(t: start, p: "100", id: 1))
        driver.send(tradeJSON(t: start / 1_000, p: "100", id: 2))  // seconds, not milliseconds
        driver.send(tradeJSON(t: 9_000_000_000_000, p: "100", id: 3))  // year 2255
        driver.send(tradeJSON(t: start + 10, p: "1e13", id: 4))
        driver.send(tradeJSON(t: start + 20, p: "100", q: "1e16", id: 5))
        driver.send(tradeJSON(t: start + 30, p: "101", id: 6))
        let output = driver.take()
        XCTAssertEqual(output.malformed.map(\.offset), [1, 2, 3, 4])
        XCTAssertTrue(output.malformed[0].reason.contains("milliseconds"), output.malformed[0].reason)
        XCTAssertTrue(output.malformed[1].reason.contains("outside"), output.malformed[1].reason)
        XCTAssertTrue(output.malformed[2].reason.contains("max_price"), output.malformed[2].reason)
        XCTAssertTrue(output.malformed[3].reason.contains("max_quantity"), output.malformed[3].reason)
        XCTAssertEqual(output.lateEvents, [], "the far-future trade did not move the watermark")
        let stats = driver.processor.stats
        XCTAssertEqual(stats.malformed, 4)
        XCTAssertEqual(stats.windowed, 2)
        XCTAssertEqual(stats.watermarkMs, start + 30 - 1_000)
    }

    func testDuplicateTradeIDsAreRejectedAlsoAfterARestore() throws {
        var driver = Driver(limitedConfig())
        driver.send(tradeJSON(t: start, p: "100", id: 10))
        driver.send(tradeJSON(t: start + 1, p: "100", id: 11))
        driver.send(tradeJSON(t: start + 2, p: "100", id: 11))  // the same trade again
        driver.send(tradeJSON("ETHUSDT", t: start + 3, p: "5", id: 11))  // ids are per symbol
        let first = driver.take()
        XCTAssertEqual(first.malformed.map(\.offset), [2])
        XCTAssertTrue(first.malformed[0].reason.contains("trade id 11 of BTCUSDT is not after the last one applied (11)"), first.malformed[0].reason)

        let restored = try PartitionProcessor(partition: 0, config: limitedConfig(), restoring: driver.processor.snapshot())
        var again = Driver(restoring: restored, nextOffset: driver.nextOffset)
        again.send(tradeJSON(t: start + 4, p: "100", id: 9))  // replayed older trade, still on time
        again.send(tradeJSON(t: start + 5, p: "100", id: 12))
        XCTAssertEqual(again.take().malformed.map(\.offset), [4], "the last id survives the snapshot")
        XCTAssertEqual(again.processor.stats.windowed, 4)

        var unlimited = Driver(testConfig(latenessMs: 1_000))
        for offset in 0..<3 { unlimited.send(tradeJSON(t: start + Int64(offset), p: "100", id: 1)) }
        XCTAssertEqual(unlimited.take().malformed, [], "without input limits nothing is checked")
    }

    func testSymbolsBeyondThePartitionLimitAreRefused() {
        var driver = Driver(limitedConfig { $0.maxSymbolsPerPartition = 3 })
        for (index, symbol) in ["AAA", "BBB", "CCC", "DDD", "AAA", "EEE"].enumerated() {
            driver.send(tradeJSON(symbol, t: start + Int64(index), p: "1", id: Int64(index)))
        }
        let output = driver.take()
        XCTAssertEqual(output.malformed.map(\.offset), [3, 5])
        XCTAssertTrue(output.malformed[0].reason.contains("new symbol DDD refused") && output.malformed[0].reason.contains("max_symbols_per_partition"),
                      output.malformed[0].reason)
        XCTAssertEqual(driver.processor.stats.symbols, 3)
        XCTAssertEqual(driver.processor.stats.windowed, 4, "known symbols go on")
    }

    func testRealBinanceTradesPassEveryLimit() throws {
        for file in [RealData.spot, RealData.usdm, RealData.coinm] {
            var driver = Driver(DetectionConfig.withInputLimits)
            for line in try RealData.lines(file) { driver.send(line) }
            let stats = driver.processor.stats
            XCTAssertEqual(stats.malformed, 0, "\(file): \(driver.output.malformed.prefix(3).map(\.reason))")
            XCTAssertEqual(stats.consumed, stats.windowed + stats.late)
        }
    }

    func testFormatTwoSnapshotsStillRestore() throws {
        // With no symbol yet, format 2 and format 3 differ only in the version field.
        var three = PartitionProcessor(partition: 0, config: limitedConfig()).snapshot()
        three[4] = 2
        three[5] = 0
        let body = Array(three.dropLast(8))
        var w = ByteWriter()
        w.write(fnv1a64(body, 0..<body.count))
        XCTAssertNoThrow(try PartitionProcessor(partition: 0, config: limitedConfig(), restoring: body + w.bytes))
    }

    // MARK: - Fuzz corpora

    /// Fuzz/corpus (seeds, and every input that once crashed a fuzz target) replayed as
    /// `make fuzz` runs them, so a fixed crash stays fixed in `make test`.
    static func corpus(_ target: String) -> [[UInt8]] {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus/\(target)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().compactMap { FileManager.default.contents(atPath: directory.appendingPathComponent($0).path).map { [UInt8]($0) } }
    }

    func testTheTradeParserFuzzCorpusReplays() throws {
        let inputs = Self.corpus("FuzzTradeParser")
        XCTAssertGreaterThan(inputs.count, 5)
        var config = DetectionConfig.withInputLimits
        config.windowMs = 3_000
        config.slideMs = 1_000
        config.allowedLatenessMs = 500
        config.baselineWindows = 4
        config.minHistory = 2
        for input in inputs {
            var driver = Driver(config)
            for line in input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) { driver.send(Array(line)) }
            let stats = driver.processor.stats
            XCTAssertEqual(stats.consumed, stats.windowed + stats.late + stats.malformed)
            let snapshot = driver.processor.snapshot()
            XCTAssertEqual(try PartitionProcessor(partition: 0, config: config, restoring: snapshot).snapshot(), snapshot)
        }
    }

    func testTheCheckpointFuzzCorpusReplays() throws {
        let inputs = Self.corpus("FuzzCheckpoint")
        XCTAssertGreaterThan(inputs.count, 3)
        var config = DetectionConfig.withInputLimits
        config.windowMs = 3_000
        config.slideMs = 1_000
        config.allowedLatenessMs = 500
        config.baselineWindows = 4
        config.minHistory = 2
        config.policy = .any
        var restoredAny = false
        for input in inputs {
            // A mode byte: 0 = the snapshot as it is, else append its checksum (see FuzzCheckpoint).
            guard let mode = input.first else { continue }
            var bytes = Array(input.dropFirst())
            if mode != 0 {
                var w = ByteWriter()
                w.write(fnv1a64(bytes, 0..<bytes.count))
                bytes += w.bytes
            }
            guard let restored = try? PartitionProcessor(partition: 0, config: config, restoring: bytes) else { continue }
            restoredAny = true
            let again = restored.snapshot()
            XCTAssertEqual(try PartitionProcessor(partition: 0, config: config, restoring: again).snapshot(), again)
        }
        XCTAssertTrue(restoredAny, "the seeds are snapshots of this build's format")
    }
}
