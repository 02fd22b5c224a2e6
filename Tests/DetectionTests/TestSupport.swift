import XCTest

@testable import Detection

/// The real Binance recordings in `/work/shared/data/real/`, found from this file's path
/// (repository root, then `../shared/data/real/`), never copied into the repository.
enum RealData {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // DetectionTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository root
        .appendingPathComponent("../shared/data/real", isDirectory: true)
        .standardizedFileURL

    static let spot = "real_trades_hftbacktest_spot.jsonl"
    static let usdm = "real_trades_hftbacktest_usdm.jsonl"
    static let coinm = "real_trades_hftbacktest_coinm.jsonl"

    static func bytes(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> [UInt8] {
        let url = directory.appendingPathComponent(name)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            XCTFail("real data file missing: \(url.path)", file: file, line: line)
            throw CocoaError(.fileNoSuchFile)
        }
        return [UInt8](data)
    }

    /// The file's non-empty lines.
    static func lines(_ name: String) throws -> [[UInt8]] {
        try bytes(name).split(separator: UInt8(ascii: "\n")).map(Array.init)
    }
}

/// A trade record as the Binance stream writes it.
func tradeJSON(
    _ symbol: String = "BTCUSDT", t: Int64, p: String, q: String = "1", m: Bool = false, id: Int64 = 1
) -> String {
    #"{"e":"trade","E":\#(t + 1),"s":"\#(symbol)","t":\#(id),"p":"\#(p)","q":"\#(q)","T":\#(t),"m":\#(m)}"#
}

/// A configuration with small numbers that are easy to check by hand.
func testConfig(
    windowMs: Int64 = 60_000, slideMs: Int64 = 20_000, latenessMs: Int64 = 0,
    baselineWindows: Int = 12, minHistory: Int = 6, z: Double = 3.5, volume: Double = 3.0,
    policy: DetectionConfig.Policy = .any, cooldownMs: Int64 = 0
) -> DetectionConfig {
    var config = DetectionConfig()
    config.windowMs = windowMs
    config.slideMs = slideMs
    config.allowedLatenessMs = latenessMs
    config.baselineWindows = baselineWindows
    config.minHistory = minHistory
    config.zScoreThreshold = z
    config.volumeSpikeRatio = volume
    config.policy = policy
    config.cooldownMs = cooldownMs
    return config
}

/// Drives a processor the way the worker does: one record at a time, offsets from 0.
struct Driver {
    var processor: PartitionProcessor
    var nextOffset: Int64 = 0
    var output = ProcessorOutput()

    init(_ config: DetectionConfig, partition: Int32 = 0) {
        processor = PartitionProcessor(partition: partition, config: config)
    }

    init(restoring processor: PartitionProcessor, nextOffset: Int64) {
        self.processor = processor
        self.nextOffset = nextOffset
    }

    mutating func send(_ record: String) {
        send(Array(record.utf8))
    }

    mutating func send(_ record: [UInt8]) {
        let offset = nextOffset
        record.withUnsafeBytes { processor.process(offset: offset, payload: $0, into: &output) }
        nextOffset += 1
    }

    mutating func trade(
        _ symbol: String = "BTCUSDT", t: Int64, p: String, q: String = "1", m: Bool = false
    ) {
        send(tradeJSON(symbol, t: t, p: p, q: q, m: m))
    }

    /// Takes what was produced so far.
    mutating func take() -> ProcessorOutput {
        defer { output.removeAll() }
        return output
    }
}

/// A deterministic pseudo-random generator (SplitMix64) for synthetic streams.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A synthetic multi-symbol stream: random walks with occasional spikes, out-of-order trades
/// inside the lateness, a few late trades, malformed records and a long silence.
func syntheticStream(seed: UInt64, count: Int) -> [[UInt8]] {
    var rng = SplitMix64(seed: seed)
    let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"]
    var prices = [60_000.0, 2_600.0, 150.0, 0.1]
    var t: Int64 = 1_723_161_600_000
    var records: [[UInt8]] = []
    for i in 0..<count {
        if i == count / 2 { t += 3 * 3_600_000 }  // a three-hour silence
        t += Int64.random(in: 0...400, using: &rng)
        let s = Int.random(in: 0..<symbols.count, using: &rng)
        let roll = Int.random(in: 0..<1000, using: &rng)
        var move = Double.random(in: -0.0005...0.0005, using: &rng)
        if roll < 3 { move *= 60 }  // a spike
        prices[s] *= 1 + move
        var tradeTime = t
        if roll >= 990 { tradeTime -= Int64.random(in: 1...9_000, using: &rng) }  // out of order
        if roll == 989 { tradeTime -= 60_000 }  // late
        let price = formatFixed(prices[s], decimals: 4)
        let qty = formatFixed(Double.random(in: 0.001...3, using: &rng) * (roll < 6 ? 40 : 1), decimals: 5)
        if roll == 500 {
            records.append(Array(#"{"s":"BTCUSDT","p":"1","#.utf8))  // truncated
        } else {
            records.append(Array(tradeJSON(symbols[s], t: tradeTime, p: price, q: qty, m: roll % 2 == 0, id: Int64(i)).utf8))
        }
    }
    return records
}
