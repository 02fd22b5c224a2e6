import Foundation
import Logging
import Prometheus
import XCTest
@testable import Protocol

/// Tokens and limits on a real server: `AccessGate` in front of a router, over HTTP/2 and
/// HTTP/1.1 on loopback.
final class SecurityGateTests: ProtocolTestCase {
    static let clusterSecret = "gate-cluster-token-000111222333"
    static let operatorSecret = "gate-operator-token-444555666777"
    private var servers: [HTTPServer] = []
    private var clients: [RPCClient] = []

    override func tearDown() async throws {
        for client in clients { await client.close() }
        for server in servers { await server.shutdown() }
        clients = []
        servers = []
        // Whatever a test did, no log line may contain a token.
        XCTAssertFalse(logs.text.contains(Self.clusterSecret) || logs.text.contains(Self.operatorSecret), "a token leaked into the log")
        try await super.tearDown()
    }

    /// Echoes the headers the handler saw, so tests can check what reached it.
    private func router(seen: Locked<[[String]]>) -> RPCRouter {
        var router = testRouter()
        router.post("/v1/anomalies/{id}/ack") { request, _ in
            seen.withLock { $0.append(request.headers.map(\.name)) }
            return .text("acknowledged")
        }
        router.get("/v1/status") { request, _ in
            seen.withLock { $0.append(request.headers.map(\.name)) }
            return .text("ok")
        }
        return router
    }

    private func gate(seen: Locked<[[String]]> = Locked([]), protectReads: Bool = false, registry: PrometheusCollectorRegistry? = nil) throws -> AccessGate {
        let policy = AccessPolicy(
            clusterToken: try SecretToken(Self.clusterSecret, source: "test"), operatorToken: try SecretToken(Self.operatorSecret, source: "test"),
            protectReads: protectReads)
        return AccessGate(policy: policy, handler: router(seen: seen), rejections: RejectionCounters(registry: registry), logger: logger)
    }

    private func start(_ handler: any HTTPHandler, limits: HTTPLimits = .init(), registry: PrometheusCollectorRegistry? = nil) async throws -> HTTPServer {
        let server = HTTPServer(host: "127.0.0.1", port: 0, handler: handler, limits: limits, rejections: RejectionCounters(registry: registry), logger: logger)
        servers.append(server)
        try await server.start()
        return server
    }

    private func client(_ server: HTTPServer, token: String?) throws -> RPCClient {
        let client = RPCClient(host: "127.0.0.1", port: server.localPort!, logger: logger, token: try token.map { try SecretToken($0, source: "test") })
        clients.append(client)
        return client
    }

    func testWorkersNeedTheClusterTokenAndTheHandlerNeverSeesIt() async throws {
        let seen = Locked<[[String]]>([])
        let gate = try gate(seen: seen)
        let server = try await start(gate)

        let worker = try client(server, token: Self.clusterSecret)
        let response: HeartbeatResponse = try await worker.call(RPCPath.heartbeat, HeartbeatRequest(workerID: "w", partitions: []))
        XCTAssertEqual(response.status, .ok)

        for (token, status) in [(nil, 401), ("a-token-that-is-wrong-0000", 403), (Self.operatorSecret, 403)] {
            do {
                let _: HeartbeatResponse = try await self.client(server, token: token).call(RPCPath.heartbeat, HeartbeatRequest(workerID: "w", partitions: []))
                XCTFail("token \(token ?? "none") must be refused")
            } catch let error as RPCError {
                XCTAssertTrue(error.isAccessDenied, "\(error)")
                guard case .status(let code, let text) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(code, status)
                XCTAssertTrue(text.contains("cluster token"), text)
                XCTAssertFalse("\(error)".contains(Self.operatorSecret), "the error must not echo the token")
            }
        }
        XCTAssertEqual(gate.stats.missingToken, 1)
        XCTAssertEqual(gate.stats.wrongToken, 2)
        XCTAssertEqual(server.stats.refusedRequests, 3, "refused when the headers arrived")

        let operatorClient = try client(server, token: Self.operatorSecret)
        let ack = try await operatorClient.request(method: "POST", path: "/v1/anomalies/a1/ack")
        XCTAssertEqual(ack.status, 200)
        let headers = seen.withLock { $0 }
        XCTAssertEqual(headers.count, 1)
        XCTAssertFalse(headers.joined().contains("authorization"), "the authorization header was removed before the handler: \(headers)")
        XCTAssertTrue(logs.text.contains("refused a request"), logs.text)
    }

    func testAnUnauthenticatedBodyIsNeverBuffered() async throws {
        let gate = try gate()
        var limits = HTTPLimits()
        limits.maxBodyBytes = 64 << 10
        let server = try await start(gate, limits: limits)
        let stranger = try client(server, token: nil)
        // Larger than the limit: if the server read the body first it would answer 413.
        let response = try await stranger.request(method: "POST", path: RPCPath.report, body: .pattern(1 << 20))
        XCTAssertEqual(response.status, 401)
        XCTAssertEqual(server.stats.rejectedBodies, 0, "refused on its headers, before any body was read")
        XCTAssertEqual(server.stats.requests, 0)

        // HTTP/1.1: refused on the head, the body left unread, the connection closed.
        let raw = try RawConnection(port: server.localPort!)
        raw.send("POST /rpc/report HTTP/1.1\r\nhost: x\r\ncontent-length: 100000000\r\n\r\n{\"partial\":")
        let (bytes, closed) = raw.readToEnd()
        let answer = String(decoding: bytes, as: UTF8.self)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 401"), answer)
        XCTAssertTrue(answer.lowercased().contains("www-authenticate: bearer"), answer)
        XCTAssertTrue(closed)
        XCTAssertEqual(gate.stats.missingToken, 2)
    }

    func testProtectedReads() async throws {
        func status(_ server: HTTPServer, _ method: String, _ path: String, token: String?) async throws -> Int {
            try await client(server, token: token).request(method: method, path: path).status
        }
        let server = try await start(try gate(protectReads: true))
        let anonymous = try await status(server, "GET", "/v1/status", token: nil)
        let asOperator = try await status(server, "GET", "/v1/status", token: Self.operatorSecret)
        let asWorker = try await status(server, "GET", "/v1/status", token: Self.clusterSecret)
        XCTAssertEqual([anonymous, asOperator, asWorker], [401, 200, 200])

        let open = try await start(try gate(protectReads: false))
        let openRead = try await status(open, "GET", "/v1/status", token: nil)
        let openWrite = try await status(open, "POST", "/v1/anomalies/x/ack", token: nil)
        XCTAssertEqual([openRead, openWrite], [200, 401], "reads open, writes still need the operator token")
    }

    func testMalformedMessagesAreAnsweredCountedAndTheServerKeepsServing() async throws {
        let registry = PrometheusCollectorRegistry()
        let gate = try gate(registry: registry)
        let server = try await start(gate, registry: registry)
        let worker = try client(server, token: Self.clusterSecret)
        for body in ["{", "[]", "{\"workerID\": 12}", String(repeating: "[", count: 10_000), "\u{FF}\u{FE}"] {
            let response = try await worker.request(method: "POST", path: RPCPath.heartbeat, headers: [("content-type", "application/json")], body: Array(body.utf8))
            XCTAssertEqual(response.status, 400, "body \(body.prefix(20))")
        }
        XCTAssertEqual(gate.stats.malformed, 5)
        let response: HeartbeatResponse = try await worker.call(RPCPath.heartbeat, HeartbeatRequest(workerID: "w", partitions: []))
        XCTAssertEqual(response.status, .ok)

        _ = try await client(server, token: nil).request(method: "POST", path: RPCPath.heartbeat)
        let text = registry.emitToString()
        XCTAssertTrue(text.contains(#"vigil_http_rejected_total{reason="malformed"} 5"#), text)
        XCTAssertTrue(text.contains(#"vigil_http_rejected_total{reason="missing_token"} 1"#), text)
        XCTAssertTrue(text.contains(#"vigil_http_rejected_total{reason="tls_handshake"} 0"#), "every reason shows from the start: \(text)")
        XCTAssertTrue(text.contains("# HELP vigil_http_rejected_total"), text)
    }

    func testOversizedHeadersGet431AndTheConnectionKeepsServing() async throws {
        var limits = HTTPLimits()
        limits.maxHeaderBytes = 4 << 10
        let server = try await start(testRouter(), limits: limits)
        let client = try client(server, token: nil)
        let big = try await client.request(method: "GET", path: "/v1/echo-query", headers: [("x-filler", String(repeating: "a", count: 8 << 10))])
        XCTAssertEqual(big.status, 431)
        XCTAssertTrue(String(decoding: big.body, as: UTF8.self).contains("4096 bytes"))
        let many = try await client.request(method: "GET", path: "/v1/echo-query", headers: (0..<200).map { ("x-h\($0)", "v") })
        XCTAssertEqual(many.status, 431, "many small headers add up")
        let echo: QueryEcho = try await client.get("/v1/echo-query")
        XCTAssertEqual(echo.path, "/v1/echo-query")
        XCTAssertEqual(server.stats.rejectedHeaders, 2)
        XCTAssertEqual(server.stats.connections, 1, "the same connection went on serving")
    }

    func testConnectionsOverTheLimitAreClosedAndCounted() async throws {
        var limits = HTTPLimits()
        limits.maxConnections = 2
        let server = try await start(testRouter(), limits: limits)
        let first = try RawConnection(port: server.localPort!, timeout: .milliseconds(300))
        let second = try RawConnection(port: server.localPort!, timeout: .milliseconds(300))
        try await waitUntil(5, "two connections to be accepted") { server.stats.connections == 2 }
        let third = try RawConnection(port: server.localPort!)
        let (_, closed) = third.readToEnd()
        XCTAssertTrue(closed, "the third connection is closed at once")
        XCTAssertEqual(server.stats.refusedConnections, 1)
        XCTAssertTrue(logs.text.contains("2 connections are open already"), logs.text)
        withExtendedLifetime((first, second)) {}
    }

    func testGarbageAfterThePrefaceIsAProtocolErrorAndNothingElse() async throws {
        let server = try await start(testRouter())
        let raw = try RawConnection(port: server.localPort!)
        raw.send(Array(ProtocolSniffer.preface) + [UInt8](repeating: 0xFF, count: 64))
        let (_, closed) = raw.readToEnd()
        XCTAssertTrue(closed, "the server closes the connection (after a GOAWAY)")
        try await waitUntil(5, "the protocol error to be counted") { server.stats.protocolErrors == 1 }
        let client = try client(server, token: nil)
        let echo: QueryEcho = try await client.get("/v1/echo-query")
        XCTAssertEqual(echo.path, "/v1/echo-query", "the server keeps serving")
    }
}
