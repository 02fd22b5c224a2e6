import Detection
@testable import Ingest
import XCTest

/// The feed's pure parts: frame decoding, trade-id continuity, backoff, URL and symbols.
final class BinanceFeedPartsTests: XCTestCase {
    private let trade = #"{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}"#

    private func decode(_ text: String) -> CombinedStreamFrame.Outcome {
        Array(text.utf8).withUnsafeBufferPointer { CombinedStreamFrame.decode($0) }
    }

    private func slice(_ text: String, _ range: Range<Int>) -> String {
        String(decoding: Array(text.utf8)[range], as: UTF8.self)
    }

    func testCombinedFrameYieldsTheInnerTradeByteForByte() throws {
        for frame in [
            #"{"stream":"btcusdt@trade","data":\#(trade)}"#,
            #"{ "stream" : "btcusdt@trade" , "data" : \#(trade) }"#,
            #"{"data":\#(trade),"stream":"btcusdt@trade"}"#,
        ] {
            guard case .trade(let found) = decode(frame) else { return XCTFail("no trade in \(frame): \(decode(frame))") }
            XCTAssertEqual(slice(frame, found.data), trade)
            XCTAssertEqual(slice(frame, found.symbol), "BTCUSDT")
            XCTAssertEqual(found.tradeId, 3_735_683_259)
            XCTAssertEqual(found.timeMs, 1_723_161_255_342)
            let parsed = try TradeParser.parse(Array(Array(frame.utf8)[found.data]))
            XCTAssertEqual(parsed.symbol.string, "BTCUSDT", "the record value is what the workers parse")
            XCTAssertEqual(parsed.tradeID, 3_735_683_259)
        }
    }

    func testKeysInsideStringsAndNestedValuesAreNotMistakenForData() throws {
        let frame = #"{"note":"\"data\":{\"s\":\"X\"}","meta":{"data":1,"list":[{"data":"no"}]},"stream":"ethusdt@trade","data":\#(trade)}"#
        guard case .trade(let found) = decode(frame) else { return XCTFail("\(decode(frame))") }
        XCTAssertEqual(slice(frame, found.data), trade)
    }

    func testRawTradeFrameIsItsOwnData() {
        guard case .trade(let found) = decode(trade) else { return XCTFail("\(decode(trade))") }
        XCTAssertEqual(found.data, 0..<trade.utf8.count)
        XCTAssertEqual(slice(trade, found.symbol), "BTCUSDT")
    }

    func testRepliesErrorsAndBrokenTradesAreNamedNotProduced() {
        guard case .notATrade(let reply) = decode(#"{"result":null,"id":1}"#) else { return XCTFail() }
        XCTAssertTrue(reply.contains("no \"data\""), reply)
        guard case .notATrade = decode(#"{"code":2,"msg":"Invalid request: unknown stream"}"#) else { return XCTFail() }

        let noId = #"{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","p":"1","q":"1","T":5}}"#
        guard case .malformed(let why) = decode(noId) else { return XCTFail("\(decode(noId))") }
        XCTAssertTrue(why.contains(#""t""#), why)

        let noSymbol = #"{"stream":"btcusdt@trade","data":{"e":"trade","t":1,"p":"1","q":"1","T":5}}"#
        guard case .malformed(let symbolWhy) = decode(noSymbol) else { return XCTFail() }
        XCTAssertTrue(symbolWhy.contains(#""s""#), symbolWhy)

        guard case .malformed = decode(#"{"stream":"x","data":[1,2]}"#) else { return XCTFail() }
        guard case .malformed = decode("ping") else { return XCTFail() }
        guard case .malformed = decode(#"{"stream":"x","data":{"s":"A""#) else { return XCTFail("truncated frame") }
    }

    func testTrackerReportsGapsAfterReconnectAndDropsDuplicates() {
        var tracker = TradeIdTracker()
        XCTAssertEqual(tracker.observe(symbol: 0, id: 100), .first)
        XCTAssertEqual(tracker.observe(symbol: 1, id: 7), .first)
        XCTAssertEqual(tracker.observe(symbol: 0, id: 101), .inOrder)
        XCTAssertEqual(tracker.observe(symbol: 0, id: 104), .gap(first: 102, last: 103, afterReconnect: false), "within a connection")
        XCTAssertEqual(tracker.observe(symbol: 0, id: 104), .duplicate)
        XCTAssertEqual(tracker.observe(symbol: 0, id: 90), .duplicate)

        tracker.connectionStarted()
        XCTAssertEqual(tracker.observe(symbol: 0, id: 103), .duplicate, "a resent trade after reconnect")
        XCTAssertEqual(tracker.observe(symbol: 0, id: 105), .inOrder, "a clean resume is no gap")
        XCTAssertEqual(tracker.observe(symbol: 1, id: 20), .gap(first: 8, last: 19, afterReconnect: true))
        XCTAssertEqual(tracker.observe(symbol: 1, id: 22), .gap(first: 21, last: 21, afterReconnect: false))
        XCTAssertEqual(tracker.observe(symbol: 3, id: 1), .first, "a symbol seen for the first time")
    }

    func testGapDescriptionNamesSymbolIdsAndCount() {
        let gap = TradeGap(symbol: "BTCUSDT", first: 10, last: 12, afterReconnect: true, connection: 2)
        XCTAssertEqual(gap.count, 3)
        XCTAssertEqual(gap.description, "BTCUSDT: trade ids 10...12 (3 trades) never received across the reconnect (connection 2)")
        XCTAssertEqual(TradeGap(symbol: "E", first: 5, last: 5, afterReconnect: false, connection: 1).description,
                       "E: trade id 5 (1 trade) never received within connection 1")
    }

    func testBackoffGrowsToTheCapWithEqualJitterAndResets() {
        var backoff = ReconnectBackoff(initial: .milliseconds(100), maximum: .seconds(1))
        XCTAssertEqual((1...6).map { backoff.nominalDelay(afterFailures: $0) },
                       [100, 200, 400, 800, 1_000, 1_000].map { Duration.milliseconds($0) })
        var random = Xoshiro256StarStar(seed: 42)
        for failure in 1...50 {
            let nominal = backoff.nominalDelay(afterFailures: failure)
            let delay = backoff.nextDelay(using: &random)
            XCTAssertTrue(delay >= nominal / 2 && delay <= nominal, "\(delay) outside [\(nominal / 2), \(nominal)]")
        }
        XCTAssertEqual(backoff.failures, 50)
        backoff.reset()
        XCTAssertEqual(backoff.failures, 0)
        XCTAssertLessThanOrEqual(backoff.nextDelay(using: &random), .milliseconds(100))

        var a = ReconnectBackoff(), b = ReconnectBackoff()
        var ra = Xoshiro256StarStar(seed: 3), rb = Xoshiro256StarStar(seed: 3)
        XCTAssertEqual((0..<5).map { _ in a.nextDelay(using: &ra) }, (0..<5).map { _ in b.nextDelay(using: &rb) }, "same seed, same delays")
    }

    func testEndpointParsing() throws {
        let binance = try WebSocketEndpoint(url: "wss://stream.binance.com:9443")
        XCTAssertEqual([binance.host, "\(binance.port)", "\(binance.usesTLS)", binance.path], ["stream.binance.com", "9443", "true", "/stream"])
        XCTAssertEqual(binance.hostHeader, "stream.binance.com:9443")

        let plain = try WebSocketEndpoint(url: "ws://127.0.0.1:8080/custom")
        XCTAssertEqual([plain.host, "\(plain.port)", "\(plain.usesTLS)", plain.path], ["127.0.0.1", "8080", "false", "/custom"])
        XCTAssertTrue(plain.hostIsIPAddress)

        let defaults = try WebSocketEndpoint(url: "WSS://example.com/")
        XCTAssertEqual(defaults.port, 443)
        XCTAssertEqual(defaults.path, "/stream")
        XCTAssertEqual(defaults.hostHeader, "example.com")
        XCTAssertFalse(defaults.hostIsIPAddress)

        let v6 = try WebSocketEndpoint(url: "ws://[::1]:9000")
        XCTAssertEqual(v6.host, "::1")
        XCTAssertEqual(v6.hostHeader, "[::1]:9000")
        XCTAssertTrue(v6.hostIsIPAddress)

        for bad in ["https://stream.binance.com", "wss://", "wss://host:0", "wss://host:x", "wss://h/stream?streams=a@trade", "ws://[::1"] {
            XCTAssertThrowsError(try WebSocketEndpoint(url: bad), bad) { error in
                let error = error as? IngestError
                XCTAssertEqual(error?.code, .invalidArgument)
                XCTAssertTrue(error?.message.contains(bad) ?? false, "\(String(describing: error))")
            }
        }
    }

    func testConfigNormalizesSymbolsAndBuildsTheCombinedStreamTarget() throws {
        let config = try BinanceFeedConfig(symbols: ["btcusdt", "ETHUSDT", "BtcUsdt"])
        XCTAssertEqual(config.symbols, ["BTCUSDT", "ETHUSDT"])
        XCTAssertEqual(config.requestTarget, "/stream?streams=btcusdt@trade/ethusdt@trade")
        XCTAssertEqual(config.streamURL, "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade")

        for bad in [[], ["btc-usdt"], [""], ["b" + String(repeating: "x", count: 20)]] {
            XCTAssertThrowsError(try BinanceFeedConfig(symbols: bad), "\(bad)") { error in
                XCTAssertEqual((error as? IngestError)?.code, .invalidArgument)
            }
        }
        XCTAssertThrowsError(try BinanceFeedConfig(symbols: (0...BinanceFeedConfig.maximumSymbols).map { "S\($0)" })) { error in
            XCTAssertTrue("\(error)".contains("at most 1024"), "\(error)")
        }
    }
}
