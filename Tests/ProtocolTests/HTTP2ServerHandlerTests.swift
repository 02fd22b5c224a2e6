import Foundation
import Logging
import NIOCore
import NIOEmbedded
import XCTest
@testable import Protocol

/// The HTTP/2 server handler driven in memory: a client nghttp2 session produces real frames,
/// a `NIOAsyncTestingChannel` carries them, no socket involved.
final class HTTP2ServerHandlerTests: ProtocolTestCase {
    /// An in-memory connection: the server handler on a testing channel, a client session facing it.
    final class Connection {
        let channel = NIOAsyncTestingChannel()
        let client: NGHTTP2Session
        let stats = Locked(HTTPServerStats())
        var responses: [Int32: HTTPResponse] = [:]
        var closedStreams: [Int32: UInt32] = [:]
        var goaway: Int32?

        init(handler: any HTTPHandler, limits: HTTPLimits = .init(), logger: Logger) async throws {
            client = try NGHTTP2Session(role: .client, maxBodyBytes: 64 << 20)
            let (channel, stats) = (self.channel, self.stats)
            try await channel.testingEventLoop.executeInContext {
                let server = try HTTP2ServerConnectionHandler(handler: handler, limits: limits, stats: stats, logger: logger)
                try channel.pipeline.syncOperations.addHandler(server)
            }
            try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7400))
        }

        func submit(_ method: String, _ target: String, body: [UInt8] = []) throws -> Int32 {
            try client.submitRequest(method: method, target: target, authority: "test", headers: [], body: body)
        }

        /// Moves frames both ways once; returns whether the server wrote anything.
        @discardableResult
        func exchange() async throws -> Bool {
            var out = ByteBuffer()
            try client.send(into: &out)
            if out.readableBytes > 0 {
                try await channel.writeInbound(out)
            }
            var received = false
            while let bytes = try await channel.readOutbound(as: ByteBuffer.self) {
                try client.receive(bytes)
                received = true
            }
            for event in client.takeEvents() {
                switch event {
                case .response(let streamID, let response): responses[streamID] = response
                case .streamClosed(let streamID, let code): closedStreams[streamID] = code
                case .goaway(let last, _): goaway = last
                default: break
                }
            }
            return received
        }

        /// Exchanges frames until the server answered `streamID` (its handler runs in a task).
        func response(on streamID: Int32) async throws -> HTTPResponse {
            try await waitUntil(5, "the response on stream \(streamID)") {
                try await exchange()
                return responses[streamID] != nil
            }
            return responses[streamID]!
        }
    }

    func testGetAndPostWithBodyGetTheirResponses() async throws {
        let connection = try await Connection(handler: testRouter(), logger: logger)
        let get = try connection.submit("GET", "/v1/echo-query?symbol=BTCUSDT&note=a%20b+c")
        let body = [UInt8].pattern(100_000)
        let post = try connection.submit("POST", "/echo", body: body)

        let getResponse = try await connection.response(on: get)
        XCTAssertEqual(getResponse.status, 200)
        XCTAssertEqual(getResponse.header("content-type"), "application/json")
        XCTAssertEqual(try getResponse.decode(QueryEcho.self), QueryEcho(path: "/v1/echo-query", query: ["symbol": "BTCUSDT", "note": "a b c"]))

        let postResponse = try await connection.response(on: post)
        XCTAssertEqual(postResponse.status, 200)
        XCTAssertEqual(postResponse.body, body)
        XCTAssertEqual(connection.stats.withLock { $0.requests }, 2)
    }

    func testUnknownPathGets404AndWrongMethod405() async throws {
        let connection = try await Connection(handler: testRouter(), logger: logger)
        let missing = try connection.submit("GET", "/nope")
        let wrongMethod = try connection.submit("GET", "/echo")
        let notFound = try await connection.response(on: missing)
        XCTAssertEqual(notFound.status, 404)
        let response = try await connection.response(on: wrongMethod)
        XCTAssertEqual(response.status, 405)
        XCTAssertEqual(response.header("allow"), "POST")
    }

    func testOversizedBodyGets413AndTheNextStreamStillWorks() async throws {
        let connection = try await Connection(handler: testRouter(), limits: HTTPLimits(maxBodyBytes: 1024), logger: logger)
        // No content-length: the server has to count the bytes as they arrive.
        let big = try connection.client.submitRequest(method: "POST", target: "/echo", authority: "test", headers: [], body: [UInt8].pattern(200_000), declareLength: false)
        let rejected = try await connection.response(on: big)
        XCTAssertEqual(rejected.status, 413)
        XCTAssertTrue(String(decoding: rejected.body, as: UTF8.self).contains("limit of 1024 bytes"))

        let small = try connection.submit("POST", "/echo", body: [UInt8].pattern(1024))
        let accepted = try await connection.response(on: small)
        XCTAssertEqual(accepted.status, 200)
        XCTAssertEqual(accepted.body, [UInt8].pattern(1024))
        XCTAssertEqual(connection.stats.withLock { $0.rejectedBodies }, 1)
        XCTAssertEqual(connection.stats.withLock { $0.requests }, 1, "the oversized request never reaches the handler")
        XCTAssertTrue(connection.channel.isActive)
    }

    func testDeclaredContentLengthOverTheLimitIsRejectedBeforeTheBody() async throws {
        let connection = try await Connection(handler: testRouter(), limits: HTTPLimits(maxBodyBytes: 100_000), logger: logger)
        // The first flight carries only 64 KiB of the body (the default window, before the
        // server's SETTINGS arrive), less than the limit: only the declared length can trigger the 413.
        let streamID = try connection.submit("POST", "/echo", body: [UInt8].pattern(200_000))
        try await connection.exchange()
        XCTAssertEqual(connection.responses[streamID]?.status, 413)
        // The client is still sending: the server asks it to stop without error (RFC 9113 §8.1).
        try await waitUntil(5, "the stream to close") {
            try await connection.exchange()
            return connection.closedStreams[streamID] != nil
        }
        XCTAssertEqual(connection.closedStreams[streamID], 0, "RST_STREAM(NO_ERROR)")

        let next = try connection.submit("GET", "/v1/echo-query")
        let nextResponse = try await connection.response(on: next)
        XCTAssertEqual(nextResponse.status, 200)
        XCTAssertEqual(connection.stats.withLock { $0.rejectedBodies }, 1)
    }

    func testClientResetCancelsTheHandler() async throws {
        let (started, startedContinuation) = AsyncStream<Void>.makeStream()
        let cancelled = Counter()
        let connection = try await Connection(handler: testRouter(started: startedContinuation, gate: Gate(), cancelled: cancelled), logger: logger)
        let streamID = try connection.submit("POST", "/slow", body: Array("x".utf8))
        try await connection.exchange()
        try await withDeadline(5, "the slow handler to start") {
            for await _ in started { break }
        }
        connection.client.resetStream(streamID)
        try await connection.exchange()
        try await waitUntil(5, "the handler's task to be cancelled") { cancelled.count == 1 }
        XCTAssertNil(connection.responses[streamID])
    }

    func testConnectionCloseMidRequestCancelsTheHandler() async throws {
        let (started, startedContinuation) = AsyncStream<Void>.makeStream()
        let cancelled = Counter()
        let connection = try await Connection(handler: testRouter(started: startedContinuation, gate: Gate(), cancelled: cancelled), logger: logger)
        _ = try connection.submit("POST", "/slow", body: Array("x".utf8))
        try await connection.exchange()
        try await withDeadline(5, "the slow handler to start") {
            for await _ in started { break }
        }
        try await connection.channel.close()
        try await waitUntil(5, "the handler's task to be cancelled") { cancelled.count == 1 }
    }

    func testQuiesceSendsGoawayFinishesInFlightThenCloses() async throws {
        let (started, startedContinuation) = AsyncStream<Void>.makeStream()
        let gate = Gate()
        let connection = try await Connection(handler: testRouter(started: startedContinuation, gate: gate), logger: logger)
        let slow = try connection.submit("POST", "/slow", body: Array("x".utf8))
        try await connection.exchange()
        try await withDeadline(5, "the slow handler to start") {
            for await _ in started { break }
        }
        connection.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try await waitUntil(5, "the GOAWAY") {
            try await connection.exchange()
            return connection.goaway != nil
        }
        XCTAssertEqual(connection.goaway, slow, "the stream in progress is below GOAWAY's last stream id")
        XCTAssertTrue(connection.channel.isActive, "the connection stays open while a request is in progress")

        gate.open()
        let response = try await connection.response(on: slow)
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self), "finally")
        try await waitUntil(5, "the connection to close once idle") {
            try await connection.exchange()
            return !connection.channel.isActive
        }
    }

    func testIdleTimeoutClosesOnlyAConnectionWithoutRequestsInProgress() async throws {
        let (started, startedContinuation) = AsyncStream<Void>.makeStream()
        let gate = Gate()
        let connection = try await Connection(handler: testRouter(started: startedContinuation, gate: gate), logger: logger)
        let slow = try connection.submit("POST", "/slow", body: Array("x".utf8))
        try await connection.exchange()
        try await withDeadline(5, "the slow handler to start") {
            for await _ in started { break }
        }
        // IdleStateHandler fires this after `HTTPLimits.idleTimeout` without traffic.
        connection.channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.all)
        try await connection.exchange()
        XCTAssertNil(connection.goaway, "a request in progress keeps the connection")
        XCTAssertTrue(connection.channel.isActive)

        gate.open()
        _ = try await connection.response(on: slow)
        connection.channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.all)
        try await waitUntil(5, "the idle connection to close") {
            try await connection.exchange()
            return !connection.channel.isActive
        }
        XCTAssertEqual(connection.goaway, slow, "closed with a graceful GOAWAY")
    }

    func testProtocolViolationClosesTheConnection() async throws {
        let connection = try await Connection(handler: testRouter(), logger: logger)
        var garbage = ByteBuffer(bytes: ProtocolSniffer.preface)
        garbage.writeBytes([UInt8](repeating: 0xFF, count: 64))
        try await connection.channel.writeInbound(garbage)
        try await waitUntil(5, "the connection to close") {
            !connection.channel.isActive
        }
        XCTAssertEqual(connection.stats.withLock { $0.protocolErrors }, 1)
    }

    func testClientSessionRejectsAnOversizedResponse() async throws {
        // Both ends are plain sessions here: the server answers 2 KiB, the client accepts 1 KiB.
        let server = try NGHTTP2Session(role: .server, maxBodyBytes: 1 << 20)
        let client = try NGHTTP2Session(role: .client, maxBodyBytes: 1024)
        let streamID = try client.submitRequest(method: "GET", target: "/big", authority: "test", headers: [], body: [])
        var events: [HTTP2SessionEvent] = []
        for _ in 0..<6 {
            var toServer = ByteBuffer()
            try client.send(into: &toServer)
            try server.receive(toServer)
            for case .request(let id, _) in server.takeEvents() {
                server.submitResponse(streamID: id, HTTPResponse(status: 200, body: [UInt8].pattern(2048)))
            }
            var toClient = ByteBuffer()
            try server.send(into: &toClient)
            try client.receive(toClient)
            events += client.takeEvents()
        }
        XCTAssertTrue(events.contains { if case .bodyTooLarge(streamID, "GET", "/big", 1024) = $0 { true } else { false } }, "\(events)")
        XCTAssertFalse(events.contains { if case .response = $0 { true } else { false } })
    }
}
