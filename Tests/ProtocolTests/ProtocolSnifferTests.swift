import NIOCore
import NIOEmbedded
import XCTest
@testable import Protocol

final class ProtocolSnifferTests: ProtocolTestCase {
    func testDetectsThePrefaceOnlyWhenComplete() {
        let preface = ProtocolSniffer.preface
        XCTAssertNil(ProtocolSniffer.detect(ByteBuffer(bytes: preface.prefix(10))))
        XCTAssertEqual(ProtocolSniffer.detect(ByteBuffer(bytes: preface)), .http2)
        XCTAssertEqual(ProtocolSniffer.detect(ByteBuffer(bytes: Array("PRX".utf8))), .http1)
        XCTAssertEqual(ProtocolSniffer.detect(ByteBuffer(bytes: Array("GET / HTTP/1.1\r\n".utf8))), .http1)
        XCTAssertNil(ProtocolSniffer.detect(ByteBuffer()))
    }

    /// Builds a connection the way `HTTPServer` does and talks HTTP/1.1 to it, split across reads.
    func testPlainHTTP1IsServedThroughTheSameHandler() async throws {
        let channel = NIOAsyncTestingChannel()
        let stats = Locked(HTTPServerStats())
        let logger = self.logger
        try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addHandler(ProtocolSniffer(handler: testRouter(), limits: .init(), stats: stats, logger: logger))
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7400))
        try await channel.writeInbound(ByteBuffer(string: "GE"))
        try await channel.writeInbound(ByteBuffer(string: "T /v1/echo-query?a=%41 HTTP/1.1\r\nHost: x\r\n\r\n"))

        var received = ""
        try await waitUntil(5, "the HTTP/1.1 response") {
            while let bytes = try await channel.readOutbound(as: ByteBuffer.self) {
                received += String(buffer: bytes)
            }
            return received.contains("\"path\"")
        }
        XCTAssertTrue(received.hasPrefix("HTTP/1.1 200 OK\r\n"), received)
        XCTAssertTrue(received.contains("{\"path\":\"\\/v1\\/echo-query\",\"query\":{\"a\":\"A\"}}"), received)
        XCTAssertEqual(stats.withLock { $0.http2Connections }, 0)
        XCTAssertEqual(stats.withLock { $0.requests }, 1)
    }
}
