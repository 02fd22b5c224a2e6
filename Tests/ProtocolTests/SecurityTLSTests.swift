import Foundation
import Logging
import XCTest
@testable import Protocol

/// TLS and mutual TLS for real, over TCP on loopback, with the fixtures of Tests/Fixtures/tls.
final class SecurityTLSTests: ProtocolTestCase {
    private var servers: [HTTPServer] = []
    private var clients: [RPCClient] = []

    override func tearDown() async throws {
        for client in clients { await client.close() }
        for server in servers { await server.shutdown() }
        clients = []
        servers = []
        try await super.tearDown()
    }

    private func serverTLS(requireClientCertificate: Bool = false, ca: String? = TLSFixtures.ca) throws -> ServerTLS {
        try ServerTLS(certificate: TLSFixtures.serverCertificate, key: TLSFixtures.serverKey, ca: ca, requireClientCertificate: requireClientCertificate)
    }

    private func startServer(tls: ServerTLS?, host: String = "127.0.0.1", limits: HTTPLimits = .init()) async throws -> HTTPServer {
        let server = HTTPServer(host: host, port: 0, handler: testRouter(), limits: limits, tls: tls, logger: logger)
        servers.append(server)
        try await server.start()
        return server
    }

    private func client(_ server: HTTPServer, host: String = "127.0.0.1", tls: ClientTLS?) -> RPCClient {
        let client = RPCClient(host: host, port: server.localPort!, logger: logger, tls: tls)
        clients.append(client)
        return client
    }

    /// The `.unreachable` message of a call that must fail to connect.
    private func unreachable(_ client: RPCClient, file: StaticString = #filePath, line: UInt = #line) async -> String {
        do {
            let _: QueryEcho = try await client.get("/v1/echo-query", timeout: .seconds(5))
            XCTFail("the call must fail", file: file, line: line)
            return ""
        } catch let RPCError.unreachable(message) {
            return message
        } catch {
            XCTFail("expected .unreachable, got \(error)", file: file, line: line)
            return ""
        }
    }

    func testHTTP2OverTLSWithTheServerVerifiedByItsCA() async throws {
        let server = try await startServer(tls: try serverTLS())
        let client = client(server, tls: try ClientTLS(ca: TLSFixtures.ca, certificate: nil, key: nil))
        XCTAssertTrue(client.usesTLS)
        let response: HeartbeatResponse = try await client.call(RPCPath.heartbeat, HeartbeatRequest(workerID: "w", partitions: [PartitionProgress(partition: 1, epoch: 1, nextOffset: 0)]))
        XCTAssertEqual(response.assignments, [Assignment(partition: 1, epoch: 2)])
        let echo: QueryEcho = try await client.get("/v1/echo-query", query: ["a": "b"])
        XCTAssertEqual(echo.query, ["a": "b"])
        XCTAssertEqual(server.stats.http2Connections, 1)
        XCTAssertEqual(server.stats.tlsHandshakeFailures, 0)

        let byName = self.client(server, host: "localhost", tls: try ClientTLS(ca: TLSFixtures.ca, certificate: nil, key: nil))
        let viaName: QueryEcho = try await byName.get("/v1/echo-query")
        XCTAssertEqual(viaName.path, "/v1/echo-query", "a DNS name in the certificate works as well as its IP address")
    }

    func testMutualTLSAdmitsOnlyClientsWithACertificateFromTheCA() async throws {
        let server = try await startServer(tls: try serverTLS(requireClientCertificate: true))

        let trusted = client(server, tls: try ClientTLS(ca: TLSFixtures.ca, certificate: TLSFixtures.clientCertificate, key: TLSFixtures.clientKey))
        let echo: QueryEcho = try await trusted.get("/v1/echo-query")
        XCTAssertEqual(echo.path, "/v1/echo-query")

        let anonymous = client(server, tls: try ClientTLS(ca: TLSFixtures.ca, certificate: nil, key: nil))
        let anonymousError = await unreachable(anonymous)
        XCTAssertTrue(anonymousError.contains("TLS handshake failed"), anonymousError)

        let rogue = client(server, tls: try ClientTLS(ca: TLSFixtures.ca, certificate: TLSFixtures.rogueClientCertificate, key: TLSFixtures.rogueClientKey))
        let rogueError = await unreachable(rogue)
        XCTAssertTrue(rogueError.contains("TLS handshake failed") && rogueError.contains("client"), rogueError)

        try await waitUntil(5, "both failed handshakes to be counted") { server.stats.tlsHandshakeFailures == 2 }
        XCTAssertTrue(logs.text.contains("TLS handshake failed"), logs.text)
        XCTAssertEqual(server.stats.requests, 1, "only the trusted client got a request through")
    }

    func testTheClientRefusesAServerItCannotVerify() async throws {
        let server = try await startServer(tls: try serverTLS())
        let wrongCA = client(server, tls: try ClientTLS(ca: TLSFixtures.rogueCA, certificate: nil, key: nil))
        let message = await unreachable(wrongCA)
        XCTAssertTrue(message.contains("not signed by the CA in [security] tls_ca"), message)
        XCTAssertEqual(server.stats.requests, 0)
    }

    func testTheClientRefusesACertificateForAnotherHost() async throws {
        // The certificate names 127.0.0.1, ::1 and localhost; 127.0.0.2 is loopback too, but not named.
        let server = try await startServer(tls: try serverTLS(), host: "127.0.0.2")
        let client = client(server, host: "127.0.0.2", tls: try ClientTLS(ca: TLSFixtures.ca, certificate: nil, key: nil))
        let message = await unreachable(client)
        XCTAssertTrue(message.contains("TLS handshake failed"), message)
        XCTAssertEqual(server.stats.requests, 0)
    }

    func testACleartextClientOnTheTLSPortIsRefusedLoggedAndCounted() async throws {
        let server = try await startServer(tls: try serverTLS())
        let port = server.localPort!

        let plain = client(server, tls: nil)
        let message = await unreachable(plain)
        XCTAssertTrue(message.contains("set [security] tls_ca"), "the client is told what to do: \(message)")

        let raw = try RawConnection(port: port)
        raw.send("GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n")
        let (bytes, closed) = raw.readToEnd()
        let answer = String(decoding: bytes, as: UTF8.self)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 400 Bad Request") && answer.contains("TLS only"), answer)
        XCTAssertTrue(closed, "the server closes the cleartext connection")

        try await waitUntil(5, "both cleartext connections to be counted") { server.stats.plaintextOnTLS == 2 }
        XCTAssertTrue(logs.text.contains("refused a cleartext connection on the TLS port"), logs.text)
        XCTAssertEqual(server.stats.requests, 0)

        let tls = client(server, tls: try ClientTLS(ca: TLSFixtures.ca, certificate: nil, key: nil))
        let echo: QueryEcho = try await tls.get("/v1/echo-query")
        XCTAssertEqual(echo.path, "/v1/echo-query", "the server keeps serving TLS clients")
    }

    func testATLSClientOnACleartextPortIsToldWhy() async throws {
        let server = try await startServer(tls: nil)
        let client = client(server, tls: try ClientTLS(ca: TLSFixtures.ca, certificate: nil, key: nil))
        let message = await unreachable(client)
        XCTAssertTrue(message.contains("TLS handshake failed"), message)
        XCTAssertTrue(message.contains("does not speak TLS"), message)
    }

    func testAStalledHandshakeIsClosedAfterTheTimeout() async throws {
        var limits = HTTPLimits()
        limits.tlsHandshakeTimeout = .milliseconds(200)
        let server = try await startServer(tls: try serverTLS(), limits: limits)
        let raw = try RawConnection(port: server.localPort!)
        raw.send([0x16, 0x03, 0x01])  // the start of a ClientHello, and then nothing
        let (_, closed) = raw.readToEnd()
        XCTAssertTrue(closed, "the server closes a connection whose handshake stalls")
        try await waitUntil(5, "the stalled handshake to be counted") { server.stats.tlsHandshakeFailures == 1 }
        XCTAssertTrue(logs.text.contains("did not complete within"), logs.text)
    }

    func testCurlOverTLSWithHTTP2AndHTTP1() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") else {
            throw XCTSkip("curl is not installed (`scripts/install-deps.sh --test` installs it)")
        }
        let server = try await startServer(tls: try serverTLS())
        let url = "https://localhost:\(server.localPort!)/v1/echo-query?x=1"
        for version in ["--http2", "--http1.1"] {
            let output = try Self.run("/usr/bin/curl", ["-sS", version, "--cacert", TLSFixtures.ca, "-w", "\n%{http_version}", url])
            XCTAssertTrue(output.contains("\"x\":\"1\""), "curl \(version): \(output)")
            XCTAssertTrue(output.hasSuffix(version == "--http2" ? "2" : "1.1"), "curl \(version) negotiated: \(output)")
        }
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
