import XCTest

@testable import Detection

/// Snapshot round trips must be invisible: stopping, snapshotting, restoring and going on gives
/// exactly the outputs of an uninterrupted run. Corrupt snapshots fail with typed errors.
final class SnapshotTests: XCTestCase {
    private let config = testConfig(latenessMs: 10_000, baselineWindows: 12, minHistory: 3, z: 2.5, volume: 2.0, cooldownMs: 60_000)

    /// Runs `records` straight through, and again with a snapshot/restore at each cut.
    private func assertRoundTripsInvisible(
        _ records: [[UInt8]], config: DetectionConfig, cuts: [Int], file: StaticString = #filePath, line: UInt = #line
    ) throws {
        var straight = Driver(config, partition: 5)
        for record in records { straight.send(record) }
        var interrupted = Driver(config, partition: 5)
        var collected = ProcessorOutput()
        var position = 0
        for cut in cuts + [records.count] {
            for record in records[position..<cut] { interrupted.send(record) }
            position = cut
            let bytes = interrupted.processor.snapshot()
            let restored = try PartitionProcessor(partition: 5, config: config, restoring: bytes)
            XCTAssertEqual(restored.snapshot(), bytes, "restore then snapshot gives the same bytes", file: file, line: line)
            XCTAssertEqual(restored.stats, interrupted.processor.stats, file: file, line: line)
            collected.append(contentsOf: interrupted.take())
            interrupted = Driver(restoring: restored, nextOffset: interrupted.nextOffset)
        }
        collected.append(contentsOf: interrupted.take())
        XCTAssertEqual(collected.windows.count, straight.output.windows.count, file: file, line: line)
        XCTAssertEqual(collected.anomalies, straight.output.anomalies, file: file, line: line)
        XCTAssertEqual(collected.windows, straight.output.windows, file: file, line: line)
        XCTAssertEqual(collected.lateEvents, straight.output.lateEvents, file: file, line: line)
        XCTAssertEqual(collected.malformed, straight.output.malformed, file: file, line: line)
        XCTAssertEqual(interrupted.processor.stats, straight.processor.stats, file: file, line: line)
        XCTAssertEqual(interrupted.processor.snapshot(), straight.processor.snapshot(), file: file, line: line)
    }

    func testRoundTripMidStreamOnSyntheticData() throws {
        let records = syntheticStream(seed: 11, count: 12_000)
        var probe = Driver(config)
        for record in records { probe.send(record) }
        XCTAssertGreaterThan(probe.processor.stats.anomalies, 0, "the stream should exercise cooldowns and anomalies")
        XCTAssertGreaterThan(probe.processor.stats.suppressed, 0)
        try assertRoundTripsInvisible(records, config: config, cuts: [0, 1, 2, 777, 5_999, 6_000, 6_001, 9_500, 11_999])
    }

    func testRoundTripMidStreamOnRealData() throws {
        let records = try RealData.lines(RealData.spot)
        var real = testConfig(latenessMs: 10_000, baselineWindows: 12, minHistory: 3, z: 2.0, volume: 2.0, cooldownMs: 60_000)
        real.slideMs = 10_000
        real.windowMs = 30_000
        var probe = Driver(real)
        for record in records { probe.send(record) }
        XCTAssertGreaterThan(probe.processor.stats.windowsClosed, 100)
        XCTAssertGreaterThan(probe.processor.stats.anomalies, 0, "low thresholds so the real data raises some")
        try assertRoundTripsInvisible(records, config: real, cuts: [10_000, 20_000, 30_000])
    }

    func testRoundTripWithTheForestAndPatternsMidSchedule() throws {
        // A small forest retrained every 4 windows, and the default thresholds, so that cuts fall
        // between trainings and inside remembered moves.
        var small = testConfig(latenessMs: 10_000, baselineWindows: 12, minHistory: 3, z: 2.5, volume: 2.0, policy: .any, cooldownMs: 60_000)
        small.isolationForest = .init(trees: 25, sampleSize: 32, historyWindows: 20, retrainEveryWindows: 4, minTrainingWindows: 6, threshold: 0.55)
        small.patterns = .init(moveZ: 4)
        let records = syntheticStream(seed: 31, count: 12_000)
        var probe = Driver(small)
        for record in records { probe.send(record) }
        let kinds = Set(probe.output.anomalies.map(\.kind))
        XCTAssertTrue(kinds.contains(.isolationOutlier), "the stream should exercise the forest: \(kinds)")
        XCTAssertTrue(kinds.contains(.flashCrash) || kinds.contains(.liquidityGap), "and a pattern rule: \(kinds)")
        XCTAssertGreaterThan(probe.processor.states.map(\.isolation.generation).max() ?? 0, 10)
        try assertRoundTripsInvisible(records, config: small, cuts: [500, 3_001, 3_002, 6_000, 7_777, 10_001])

        var filtered = small
        filtered.policy = .filtered
        try assertRoundTripsInvisible(records, config: filtered, cuts: [4_000, 8_000])
    }

    func testForestSettingsAreStateButItsThresholdIsNot() throws {
        var d = Driver(config, partition: 5)
        for record in syntheticStream(seed: 1, count: 2_000) { d.send(record) }
        let bytes = d.processor.snapshot()
        var otherHistory = config
        otherHistory.isolationForest = .init(historyWindows: 90)
        XCTAssertEqual(restoreError(bytes, config: otherHistory)?.code, .configMismatch)
        var otherThreshold = config
        otherThreshold.isolationForest = .init(threshold: 0.7)
        otherThreshold.patterns = .init(moveZ: 5)
        XCTAssertNil(restoreError(bytes, config: otherThreshold))
    }

    func testOutputsDoNotDependOnBatchBoundaries() {
        let records = syntheticStream(seed: 5, count: 5_000)
        var whole = Driver(config)
        for record in records { whole.send(record) }
        var batched = Driver(config)
        var collected = ProcessorOutput()
        var rng = SplitMix64(seed: 9)
        var i = 0
        while i < records.count {
            let n = Int.random(in: 1...700, using: &rng)
            for record in records[i..<min(records.count, i + n)] { batched.send(record) }
            collected.append(contentsOf: batched.output)
            batched.output.removeAll(keepingCapacity: true)
            i += n
        }
        XCTAssertEqual(collected, whole.output)
    }

    func testFreshProcessorRoundTrips() throws {
        let fresh = PartitionProcessor(partition: 2, config: config)
        let restored = try PartitionProcessor(partition: 2, config: config, restoring: fresh.snapshot())
        XCTAssertEqual(restored.stats, fresh.stats)
        XCTAssertEqual(restored.stats.watermarkMs, .min)
    }

    func testSnapshotIsCompact() {
        var d = Driver(config)
        for record in syntheticStream(seed: 2, count: 3_000) { d.send(record) }
        let size = d.processor.snapshot().count
        // Four symbols over about 10 minutes, each at most 7 live panes (169 B), 12 baseline
        // windows (128 B), one forest vector (36 B) per window closed so far (about 32) and the
        // pattern memory (65 B), plus names and cooldowns.
        XCTAssertLessThan(size, 4 * (7 * 169 + 12 * 128 + 40 * 36 + 65 + 100) + 200)
    }

    // MARK: - Corrupt input

    private func restoreError(_ bytes: [UInt8], partition: Int32 = 5, config: DetectionConfig? = nil) -> SnapshotError? {
        do {
            _ = try PartitionProcessor(partition: partition, config: config ?? self.config, restoring: bytes)
            return nil
        } catch {
            return error
        }
    }

    private func validSnapshot() -> [UInt8] {
        var d = Driver(config, partition: 5)
        for record in syntheticStream(seed: 1, count: 2_000) { d.send(record) }
        return d.processor.snapshot()
    }

    /// Re-seals bytes with a correct checksum, to reach the checks behind it.
    private func resealed(_ bytes: [UInt8]) -> [UInt8] {
        var body = Array(bytes.dropLast(8))
        var w = ByteWriter()
        w.write(fnv1a64(body, 0..<body.count))
        body += w.bytes
        return body
    }

    func testCorruptSnapshotsFailWithTypedErrors() throws {
        let good = validSnapshot()
        XCTAssertEqual(restoreError([])?.code, .notASnapshot)
        XCTAssertEqual(restoreError(Array("VGLP".utf8))?.code, .notASnapshot)
        XCTAssertEqual(restoreError(Array(#"{"json":true}"#.utf8))?.code, .notASnapshot)
        var badMagic = good
        badMagic[0] = UInt8(ascii: "X")
        XCTAssertEqual(restoreError(badMagic)?.code, .notASnapshot)
        XCTAssertEqual(restoreError(Array(good.dropLast()))?.code, .checksumMismatch)
        var flipped = good
        flipped[good.count / 2] ^= 0x40
        let error = try XCTUnwrap(restoreError(flipped))
        XCTAssertEqual(error.code, .checksumMismatch)
        XCTAssertTrue(error.message.contains("discard"), "the message says what to do: \(error.message)")

        var future = good
        future[4] = 99
        XCTAssertEqual(restoreError(resealed(future))?.code, .unsupportedVersion)
        XCTAssertEqual(restoreError(good, partition: 6)?.code, .partitionMismatch)
        var otherWindows = config
        otherWindows.windowMs = 120_000
        XCTAssertEqual(restoreError(good, config: otherWindows)?.code, .configMismatch)
        var otherThresholds = config
        otherThresholds.zScoreThreshold = 9
        otherThresholds.policy = .volume
        XCTAssertNil(restoreError(good, config: otherThresholds), "thresholds and policy are not state")

        var trailing = Array(good.dropLast(8))
        trailing.append(0)
        trailing += Array(repeating: 0, count: 8)
        XCTAssertEqual(restoreError(resealed(trailing))?.code, .corrupt)
        var counters = good
        counters[4 + 2 + 4 + 8 * 3 + 4 + 4 + 4] ^= 1  // consumed no longer equals windowed + late + malformed
        XCTAssertEqual(restoreError(resealed(counters))?.code, .corrupt)
    }

    func testRandomCorruptionNeverTrapsEvenWithAValidChecksum() {
        let good = validSnapshot()
        let more = syntheticStream(seed: 77, count: 300)
        var rng = SplitMix64(seed: 99)
        var restoredCount = 0
        for _ in 0..<1_500 {
            var bytes = good
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let i = Int.random(in: 0..<(bytes.count - 8), using: &rng)
                bytes[i] = UInt8.random(in: 0...255, using: &rng)
            }
            if Bool.random(using: &rng) { bytes = Array(bytes.prefix(Int.random(in: 8...bytes.count, using: &rng))) }
            guard var restored = try? PartitionProcessor(partition: 5, config: config, restoring: resealed(bytes)) else { continue }
            restoredCount += 1
            // Whatever was accepted must keep working.
            var output = ProcessorOutput()
            for (k, record) in more.enumerated() {
                record.withUnsafeBytes { restored.process(offset: Int64(1_000_000 + k), payload: $0, into: &output) }
            }
            let s = restored.stats
            XCTAssertEqual(s.consumed, s.windowed + s.late + s.malformed)
        }
        XCTAssertGreaterThan(restoredCount, 0, "some mutations (e.g. of prices) are still valid state")
    }
}
