import Foundation
import Ingest
import Kafka
import NIOHTTP1
import NIOSSL
import XCTest

/// `BinanceFeed` against a local combined-stream server (plain and TLS) serving recorded
/// Binance trades, into the embedded broker: every trade once, gaps reported exactly.
final class BinanceFeedTests: IngestTestCase {
    private let symbols = ["btcusdt", "ethusdt"]
    private let partitions: Int32 = 4

    /// The connection drops midway and the server resumes a few trade ids later: every trade
    /// served reaches the topic exactly once, and the skipped ids are reported as gaps.
    func testDroppedConnectionThenSkippedIdsReachKafkaOnceAndReportTheGap() async throws {
        let lines = try RealTrades.spotLines()
        let dropAt = lines.count / 2
        let skipped = 9
        let served = Array(lines[..<dropAt]) + Array(lines[(dropAt + skipped)...])
        let server = try BinanceStreamServer(plans: [
            .init(lines: Array(lines[..<dropAt]), ending: .drop),
            .init(lines: Array(lines[(dropAt + skipped)...]), ending: .stayOpen),
        ])
        defer { server.shutdown() }

        let (report, events, records) = try await runFeed(url: server.url(tls: false), expecting: served.count)

        try assertExactlyOnce(records, expected: served)
        XCTAssertEqual(report.connections, 2)
        XCTAssertEqual(report.produced, served.count)
        XCTAssertEqual(report.duplicatesDropped, 0)

        // The gaps are exactly the ids the server skipped, per symbol, flagged as across the reconnect.
        var expected: [TradeGap] = []
        let before = try lines[..<dropAt].map(RealTrades.identity)
        let after = try lines[(dropAt + skipped)...].map(RealTrades.identity)
        for symbol in ["BTCUSDT", "ETHUSDT"] {
            guard let last = before.last(where: { $0.symbol == symbol })?.id,
                  let next = after.first(where: { $0.symbol == symbol })?.id, next > last + 1 else { continue }
            expected.append(TradeGap(symbol: symbol, first: last + 1, last: next - 1, afterReconnect: true, connection: 2))
        }
        XCTAssertFalse(expected.isEmpty, "the test must skip ids of at least one symbol")
        XCTAssertEqual(expected.reduce(0) { $0 + $1.count }, Int64(skipped), "the recording is complete: skipped lines are the missing ids")
        XCTAssertEqual(Set(report.gaps.map(\.description)), Set(expected.map(\.description)))
        XCTAssertEqual(report.gapCount, expected.count)
        XCTAssertEqual(report.missedTrades, Int64(skipped))
        let gapEvents = events.compactMap { event -> TradeGap? in
            if case .gap(let gap) = event { return gap }
            return nil
        }
        XCTAssertEqual(Set(gapEvents.map(\.description)), Set(expected.map(\.description)))
        XCTAssertTrue(logLines.contains { $0.contains("binance feed gap") }, "a gap is logged, never hidden")

        // Both connections subscribed to both streams and had their ping answered.
        let seen = server.seen
        XCTAssertEqual(seen.requestTargets, Array(repeating: "/stream?streams=btcusdt@trade/ethusdt@trade", count: 2))
        XCTAssertEqual(seen.pongs, ["ping-1", "ping-2"])
        XCTAssertTrue(events.contains { if case .disconnected(1, _, dropAt, _?) = $0 { true } else { false } }, "\(events)")
    }

    /// Over TLS: the server closes as at Binance's 24-hour mark, then resends a few trades the
    /// feed already has, then drops, then resumes exactly: no gap, no duplicate in Kafka.
    func testTLSFeedResumesCleanlyAcrossCloseAndDropAndDropsResentTrades() async throws {
        let certificate = try TestCertificate(in: directory)
        let lines = Array(try RealTrades.spotLines().prefix(12_000))
        let first = 5_000
        let second = 9_000
        let resent = 6
        let server = try BinanceStreamServer(plans: [
            .init(lines: Array(lines[..<first]), ending: .closeFrame(code: 1001, reason: "going away")),
            .init(lines: Array(lines[(first - resent)..<second]), ending: .drop),
            .init(lines: Array(lines[second...]), ending: .stayOpen),
        ], tls: try certificate.serverConfiguration())
        defer { server.shutdown() }

        let (report, events, records) = try await runFeed(
            url: server.url(tls: true), expecting: lines.count, tls: try certificate.trustingClientConfiguration())

        try assertExactlyOnce(records, expected: lines)
        XCTAssertEqual(report.connections, 3)
        XCTAssertEqual(report.gaps, [], "a clean resume reports no gap")
        XCTAssertEqual(report.gapCount, 0)
        XCTAssertEqual(report.duplicatesDropped, resent)
        XCTAssertEqual(report.produced, lines.count)
        XCTAssertEqual(report.perSymbol.values.reduce(0, +), lines.count)
        XCTAssertEqual(report.delivery.delivered, lines.count)
        XCTAssertTrue(report.cancelled)
        XCTAssertEqual(server.seen.pongs, ["ping-1", "ping-2", "ping-3"])
        XCTAssertTrue(events.contains {
            if case .disconnected(1, let reason, _, _) = $0 { reason.contains("code 1001") && reason.contains("going away") } else { false }
        }, "\(events)")
    }

    /// A certificate the client does not trust is a TLS failure, named as such, and retried.
    func testUntrustedCertificateIsReportedAsTLSFailureAndRetried() async throws {
        let certificate = try TestCertificate(in: directory)
        let server = try BinanceStreamServer(plans: [], tls: try certificate.serverConfiguration())
        defer { server.shutdown() }
        var config = try BinanceFeedConfig(url: server.url(tls: true), symbols: symbols)  // system trust roots only
        config.backoff = ReconnectBackoff(initial: .milliseconds(10), maximum: .milliseconds(40))
        let failures = try await collectConnectFailures(config: config, count: 2)

        for failure in failures {
            XCTAssertEqual(failure.code, .tlsFailed, "\(failure)")
            XCTAssertTrue(failure.message.contains("localhost:\(server.port)"), failure.message)
            XCTAssertTrue(failure.message.lowercased().contains("certificate"), failure.message)
        }
        XCTAssertEqual(server.seen.requestTargets, [], "nothing is sent before the server is trusted")
    }

    /// An HTTP answer instead of the upgrade (Binance's 451 from a restricted location) names
    /// the status, the server's message and what to do.
    func testRefusedUpgradeNamesTheStatusAndTheServersMessage() async throws {
        let server = try BinanceStreamServer(plans: [], rejectWith: .unavailableForLegalReasons)
        defer { server.shutdown() }
        var config = try BinanceFeedConfig(url: server.url(tls: false), symbols: symbols)
        config.backoff = ReconnectBackoff(initial: .milliseconds(10), maximum: .milliseconds(40))
        let failures = try await collectConnectFailures(config: config, count: 1)

        let failure = try XCTUnwrap(failures.first)
        XCTAssertEqual(failure.code, .upgradeRejected)
        XCTAssertTrue(failure.message.contains("HTTP 451"), failure.message)
        XCTAssertTrue(failure.message.contains("Service unavailable from a restricted location"), failure.message)
        XCTAssertTrue(failure.message.contains("stream.binance.us"), failure.message)
    }

    /// Nothing listening: a connection failure naming the address, retried with growing delays.
    func testRefusedConnectionIsRetriedWithBackoff() async throws {
        let port = try unusedLoopbackPort()
        var config = try BinanceFeedConfig(url: "ws://127.0.0.1:\(port)", symbols: symbols)
        config.backoff = ReconnectBackoff(initial: .milliseconds(10), maximum: .milliseconds(80))
        config.jitterSeed = 7
        let events = EventLog<BinanceFeedEvent>()
        let task = Task { [logger] in
            try await BinanceFeed(config: config, logger: logger).run(into: DiscardingSink()) { events.append($0) }
        }
        await events.wait(for: "four failed attempts") { $0.count >= 4 }
        task.cancel()
        let report = try await task.value

        var delays: [Duration] = []
        for (index, event) in events.all.prefix(4).enumerated() {
            guard case .connectFailed(let error, let attempt, let retryIn) = event else {
                XCTFail("expected a failed attempt, got \(event)")
                continue
            }
            XCTAssertEqual(error.code, .connectFailed)
            XCTAssertEqual(attempt, index + 1)
            XCTAssertTrue(error.message.contains("127.0.0.1:\(port)"), error.message)
            XCTAssertTrue(error.message.lowercased().contains("refused"), error.message)
            delays.append(retryIn)
        }
        let nominal = [10, 20, 40, 80].map { Duration.milliseconds($0) }
        for (delay, expected) in zip(delays, nominal) {
            XCTAssertTrue(delay >= expected / 2 && delay <= expected, "delay \(delay) outside [\(expected / 2), \(expected)]")
        }
        XCTAssertEqual(report.connections, 0)
        XCTAssertGreaterThanOrEqual(report.failedAttempts, 4)
        XCTAssertTrue(report.cancelled)
    }

    /// A server that goes quiet (no frames, no pong to our ping) is dropped as dead.
    func testSilentServerIsDroppedAfterTheKeepalive() async throws {
        let server = try BinanceStreamServer(plans: [.init(lines: [], ending: .stayOpen, pingFirst: false)])
        defer { server.shutdown() }
        var config = try BinanceFeedConfig(url: server.url(tls: false), symbols: symbols)
        config.keepaliveInterval = .milliseconds(100)
        config.backoff = ReconnectBackoff(initial: .milliseconds(10), maximum: .milliseconds(20))
        let events = EventLog<BinanceFeedEvent>()
        let task = Task { [logger] in
            try await BinanceFeed(config: config, logger: logger).run(into: DiscardingSink()) { events.append($0) }
        }
        await events.wait(for: "the silent connection to be dropped") { events in
            events.contains { if case .disconnected(1, _, _, _) = $0 { true } else { false } }
        }
        task.cancel()
        _ = try await task.value

        let reason = events.all.compactMap { event -> String? in
            if case .disconnected(1, let reason, _, _) = event { return reason }
            return nil
        }.first ?? ""
        XCTAssertTrue(reason.contains("no frame from the server"), reason)
        XCTAssertGreaterThanOrEqual(server.seen.clientPings, 1, "the feed pings a quiet server before giving up")
    }

    // MARK: - Helpers

    /// Runs a feed into a fresh embedded broker until `count` records are on the topic, then stops it.
    private func runFeed(
        url: String, expecting count: Int, tls: TLSConfiguration? = nil
    ) async throws -> (BinanceFeedReport, [BinanceFeedEvent], [TopicRecord]) {
        let broker = try EmbeddedBroker(topic: "trades", partitions: partitions, logger: logger)
        defer { broker.shutdown() }
        let producer = try KafkaProducer(brokers: broker.bootstrap, logger: logger)
        defer { producer.close() }
        var config = try BinanceFeedConfig(url: url, symbols: symbols)
        config.backoff = ReconnectBackoff(initial: .milliseconds(10), maximum: .milliseconds(50))
        config.jitterSeed = 1
        if let tls { config.tls = tls }
        let events = EventLog<BinanceFeedEvent>()
        let sink = KafkaSink(producer: producer, topic: "trades")
        let task = Task { [logger] in
            try await BinanceFeed(config: config, logger: logger).run(into: sink) { events.append($0) }
        }
        // Reading on a little after the expected count shows any record beyond them.
        let records = try await readTopic("trades", partitions: partitions, brokers: broker.bootstrap, count: count, settle: .milliseconds(300))
        task.cancel()
        let report = try await task.value
        return (report, events.all, records)
    }

    /// Every line reached the topic exactly once, byte for byte, keyed by its symbol.
    private func assertExactlyOnce(_ records: [TopicRecord], expected lines: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(records.count, lines.count, "records on the topic", file: file, line: line)
        var counts: [String: Int] = [:]
        for record in records { counts[record.value, default: 0] += 1 }
        let duplicated = counts.filter { $0.value > 1 }
        XCTAssertTrue(duplicated.isEmpty, "\(duplicated.count) trades reached the topic more than once, e.g. \(duplicated.keys.prefix(2))", file: file, line: line)
        let served = Set(lines)
        let missing = served.subtracting(counts.keys)
        let unexpected = Set(counts.keys).subtracting(served)
        XCTAssertTrue(missing.isEmpty, "\(missing.count) trades served never reached the topic, e.g. \(missing.prefix(2))", file: file, line: line)
        XCTAssertTrue(unexpected.isEmpty, "\(unexpected.count) records that were not served, e.g. \(unexpected.prefix(2))", file: file, line: line)
        for record in records.prefix(200) {
            XCTAssertEqual(record.key, try RealTrades.identity(record.value).symbol, "keyed by the upper-case symbol", file: file, line: line)
        }
        // Within a partition, each symbol's trades keep their order.
        var lastId: [String: Int64] = [:]
        for record in records.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            let (symbol, id) = try RealTrades.identity(record.value)
            XCTAssertLessThan(lastId[symbol] ?? .min, id, "\(symbol) out of order", file: file, line: line)
            lastId[symbol] = id
        }
    }

    private func collectConnectFailures(config: BinanceFeedConfig, count: Int) async throws -> [IngestError] {
        let events = EventLog<BinanceFeedEvent>()
        let task = Task { [logger] in
            try await BinanceFeed(config: config, logger: logger).run(into: DiscardingSink()) { events.append($0) }
        }
        await events.wait(for: "\(count) failed attempts") { events in
            events.filter { if case .connectFailed = $0 { true } else { false } }.count >= count
        }
        task.cancel()
        let report = try await task.value
        XCTAssertEqual(report.connections, 0)
        return events.all.compactMap { event in
            if case .connectFailed(let error, _, _) = event { return error }
            return nil
        }
    }
}
