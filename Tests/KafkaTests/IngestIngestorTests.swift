import Detection
import Foundation
import Logging
import Synchronization
import XCTest

import Ingest

/// A clock whose sleeps return at once, moving time to the deadline: paced runs take no real time.
private final class SkippingClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }

    private let state = Mutex<(now: Duration, sleeps: Int)>((.zero, 0))
    var now: Instant { Instant(offset: state.withLock { $0.now }) }
    var minimumResolution: Duration { .nanoseconds(1) }
    var sleeps: Int { state.withLock { $0.sleeps } }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        try Task.checkCancellation()
        state.withLock { state in
            state.now = max(state.now, deadline.offset)
            state.sleeps += 1
        }
    }
}

/// Keeps what it is sent in memory, with the time of the clock it is given, and can refuse a record.
private final class RecordingSink: RecordSink, Sendable {
    struct Sent: Equatable {
        var key: String
        var value: String
        var at: Duration
    }

    private struct State {
        var sent: [Sent] = []
        var finishes = 0
        var polls = 0
        var events: [String] = []
    }

    private let state = Mutex(State())
    private let clock: SkippingClock?
    private let refuseRecord: Int?

    /// - Parameter refuseRecord: 1-based number of a record to refuse with an error.
    init(clock: SkippingClock? = nil, refuseRecord: Int? = nil) {
        self.clock = clock
        self.refuseRecord = refuseRecord
    }

    struct Refused: Error, CustomStringConvertible {
        var description: String { "record too large (test)" }
    }

    func send(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws {
        let at = clock?.now.offset ?? .zero
        try state.withLock { state in
            if state.sent.count + 1 == refuseRecord { throw Refused() }
            let sent = Sent(key: String(decoding: key, as: UTF8.self), value: String(decoding: value, as: UTF8.self), at: at)
            state.sent.append(sent)
            state.events.append("trade \(sent.key)")
        }
    }

    func poll() { state.withLock { $0.polls += 1 } }

    func finish(timeoutMs: Int32) -> DeliveryReport {
        state.withLock { state in
            state.finishes += 1
            return DeliveryReport(delivered: state.sent.count, failed: 0, pending: 0)
        }
    }

    func note(_ event: String) { state.withLock { $0.events.append(event) } }
    var sent: [Sent] { state.withLock { $0.sent } }
    var count: Int { state.withLock { $0.sent.count } }
    var finishes: Int { state.withLock { $0.finishes } }
    var polls: Int { state.withLock { $0.polls } }
    var events: [String] { state.withLock { $0.events } }
}

/// The `Ingestor` shell: pacing, labels, counts, cancellation and errors, with in-memory sinks.
final class IngestIngestorTests: XCTestCase {
    let logger = Logger(label: "ingest-tests") { _ in SwiftLogNoOpLogHandler() }
    let spot = IngestTestSupport.realTrades("real_trades_hftbacktest_spot.jsonl")

    func testMaxPacingSendsEverythingKeyedBySymbolWithoutWaiting() async throws {
        let clock = SkippingClock()
        let sink = RecordingSink(clock: clock)
        var source = try ReplaySource(path: spot.path)
        let report = try await Ingestor(pacing: .max, clock: clock, logger: logger).run(&source, into: sink)

        let lines = try String(contentsOf: spot, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(sink.sent.map(\.value), lines)
        for sent in sink.sent.prefix(1_000) { XCTAssertTrue(sent.value.contains(#""s":"\#(sent.key)""#)) }
        XCTAssertEqual(clock.sleeps, 0)
        XCTAssertEqual(report.produced, 34_419)
        XCTAssertEqual(report.delivered, 34_419)
        XCTAssertEqual(report.perSymbol, ["BTCUSDT": 19_904, "ETHUSDT": 14_515])
        XCTAssertEqual(report.malformed, 0)
        XCTAssertEqual(report.firstTimeMs, 1_723_161_255_342)
        XCTAssertFalse(report.cancelled)
        XCTAssertEqual(sink.finishes, 1)
        XCTAssertGreaterThan(sink.polls, 0, "delivery reports are served during the run")
    }

    func testScaledPacingReleasesEachRecordAtItsEventTimeOverTheFactor() async throws {
        let clock = SkippingClock()
        let sink = RecordingSink(clock: clock)
        var source = try ReplaySource(path: spot.path)
        let factor = 50.0
        let report = try await Ingestor(pacing: .scaled(factor), clock: clock, logger: logger).run(&source, into: sink)

        let first = try XCTUnwrap(report.firstTimeMs)
        let last = try XCTUnwrap(report.lastTimeMs)
        let times = sink.sent.map { sent -> Int64 in
            let digits = sent.value.split(separator: #""T":"#)[1].prefix { $0.isNumber }
            return Int64(digits)!
        }
        for (sent, time) in zip(sink.sent, times) {
            let due = Duration.nanoseconds(Int64((Double(time - first) * 1_000_000 / factor).rounded()))
            XCTAssertEqual(sent.at, due, "a trade \(time - first) ms into the file goes out at 1/\(factor) of that")
        }
        XCTAssertEqual(report.elapsed, .nanoseconds(Int64((Double(last - first) * 1_000_000 / factor).rounded())))
        XCTAssertGreaterThan(clock.sleeps, 1_000)
        XCTAssertLessThan(clock.sleeps, times.count, "trades in the same millisecond share one wait")
    }

    func testRatePacingSendsASteadyNumberOfRecordsPerSecond() async throws {
        let clock = SkippingClock()
        let sink = RecordingSink(clock: clock)
        var source = try ReplaySource(path: spot.path)
        let report = try await Ingestor(pacing: .rate(2_000), clock: clock, logger: logger).run(&source, into: sink)
        XCTAssertEqual(report.produced, 34_419)
        for (index, sent) in sink.sent.enumerated() {
            XCTAssertEqual(sent.at, .microseconds(500 * index), "record \(index) goes out at \(index) / 2000 s")
        }
    }

    func testAPacingThatIsNotPositiveIsRefusedBeforeSending() async throws {
        let sink = RecordingSink()
        var source = try ReplaySource(path: spot.path)
        for pacing in [Pacing.scaled(0), .rate(-1), .scaled(.infinity)] {
            do {
                _ = try await Ingestor(pacing: pacing, clock: SkippingClock(), logger: logger).run(&source, into: sink)
                XCTFail("\(pacing) should be refused")
            } catch let error as IngestError {
                XCTAssertEqual(error.code, .invalidConfig)
            }
        }
        XCTAssertEqual(sink.count, 0)
    }

    func testSimulatorLabelsArePassedOnAsTheStreamReachesThem() async throws {
        var config = SimulatorConfig()
        config.tradesPerSecond = 10
        config.durationMs = 30 * 60_000
        var simulator = try MarketSimulator(config: config)
        let expected = simulator.labels
        let sink = RecordingSink()
        var firstTimeAfterLabel: [AnomalyLabel: Int] = [:]
        let report = try await Ingestor(pacing: .max, clock: SkippingClock(), logger: logger)
            .run(&simulator, into: sink) { label in
                sink.note("label \(label.symbol) \(label.kind.rawValue)")
                firstTimeAfterLabel[label] = sink.count
            }
        XCTAssertEqual(report.labels, expected)
        XCTAssertEqual(Set(firstTimeAfterLabel.keys), Set(expected))
        XCTAssertEqual(sink.events.filter { $0.hasPrefix("label") }.count, 6)

        // Each label arrives after every trade before its start and before any trade from its start on.
        var replay = try MarketSimulator(config: config)
        var record = IngestRecord()
        var times: [Int64] = []
        while replay.next(into: &record) { times.append(record.timeMs) }
        for label in expected {
            let sentBefore = try XCTUnwrap(firstTimeAfterLabel[label])
            XCTAssertEqual(sentBefore, times.firstIndex { $0 >= label.startMs }, "\(label)")
        }
        XCTAssertEqual(report.produced, times.count)
        XCTAssertEqual(report.perSymbol.values.reduce(0, +), times.count)
    }

    func testMalformedLinesAreReportedAndNotProduced() async throws {
        let directory = try IngestTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("mixed.jsonl")
        let good = #"{"e":"trade","E":2,"s":"BTCUSDT","t":1,"p":"1.00","q":"1.0","T":1,"m":true}"#
        try Data([good, "not json", good, #"{"s":"ETHUSDT"}"#].joined(separator: "\n").utf8).write(to: file)
        var source = try ReplaySource(path: file.path)
        let sink = RecordingSink()
        let report = try await Ingestor(pacing: .max, clock: SkippingClock(), logger: logger).run(&source, into: sink)
        XCTAssertEqual(report.produced, 2)
        XCTAssertEqual(report.malformed, 2)
        XCTAssertEqual(report.malformedSamples.map(\.lineNumber), [2, 4])
        XCTAssertEqual(sink.count, 2)
    }

    func testARefusedRecordStopsTheRunAfterFlushingWhatWasSent() async throws {
        let sink = RecordingSink(refuseRecord: 10)
        var source = try ReplaySource(path: spot.path)
        do {
            _ = try await Ingestor(pacing: .max, clock: SkippingClock(), logger: logger).run(&source, into: sink)
            XCTFail("the run should fail on the refused record")
        } catch let error as IngestError {
            XCTAssertEqual(error.code, .produceFailed)
            XCTAssertTrue(error.message.contains("line 10"), error.message)
            XCTAssertTrue(error.message.contains("after 9 were produced"), error.message)
            XCTAssertTrue(error.message.contains("record too large"), error.message)
        }
        XCTAssertEqual(sink.count, 9)
        XCTAssertEqual(sink.finishes, 1)
    }

    /// Real time on the real clock: the spot file would take 11 minutes; cancelling returns at once.
    func testCancellationStopsPromptlyAndFlushes() async throws {
        let sink = RecordingSink()
        let path = spot.path
        let logger = self.logger
        let run = Task {
            var source = try ReplaySource(path: path)
            return try await Ingestor(pacing: .realTime, logger: logger).run(&source, into: sink)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while sink.count == 0 {
            guard ContinuousClock.now < deadline else { return XCTFail("no record was sent within 10 s") }
            try await Task.sleep(for: .milliseconds(5))
        }
        let cancelledAt = ContinuousClock.now
        run.cancel()
        let report = try await run.value
        XCTAssertLessThan(ContinuousClock.now - cancelledAt, .seconds(2), "cancellation must cut the wait short")
        XCTAssertTrue(report.cancelled)
        XCTAssertLessThan(report.produced, 34_419)
        XCTAssertEqual(report.produced, sink.count)
        XCTAssertEqual(sink.finishes, 1)
    }

    func testFileSinkWritesTheValuesAsLines() async throws {
        let directory = try IngestTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("copy.jsonl")
        var source = try ReplaySource(path: spot.path)
        let writer = try LineFileWriter(path: out.path)
        let report = try await Ingestor(pacing: .max, clock: SkippingClock(), logger: logger).run(&source, into: writer)
        try writer.close()
        XCTAssertEqual(report.delivered, 34_419)
        XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: spot))
    }
}
