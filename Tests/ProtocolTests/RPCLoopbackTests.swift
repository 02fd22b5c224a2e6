import Foundation
import NIOCore
import NIOPosix
import XCTest
@testable import Protocol

/// Client and server for real, over TCP on 127.0.0.1 with ephemeral ports.
final class RPCLoopbackTests: ProtocolTestCase {
    private var servers: [HTTPServer] = []
    private var clients: [RPCClient] = []

    override func tearDown() async throws {
        for client in clients { await client.close() }
        for server in servers { await server.shutdown() }
        clients = []
        servers = []
        try await super.tearDown()
    }

    private func startServer(_ handler: any HTTPHandler = testRouter(), limits: HTTPLimits = .init(), port: Int = 0) async throws -> HTTPServer {
        let server = HTTPServer(host: "127.0.0.1", port: port, handler: handler, limits: limits, logger: logger)
        servers.append(server)
        try await server.start()
        return server
    }

    private func client(for server: HTTPServer) -> RPCClient {
        let client = RPCClient(host: "127.0.0.1", port: server.localPort!, logger: logger)
        clients.append(client)
        return client
    }

    func testJSONRoundTripWithAWireMessage() async throws {
        let server = try await startServer()
        let client = client(for: server)
        let request = HeartbeatRequest(workerID: "worker-1", partitions: [
            PartitionProgress(partition: 3, epoch: 7, nextOffset: 1_000, consumed: 1_000, watermarkMs: 1_700_000_000_000),
            PartitionProgress(partition: 5, epoch: 2, nextOffset: 0),
        ], rssBytes: 50 << 20, cpuSeconds: 1.5)
        let response: HeartbeatResponse = try await client.call(RPCPath.heartbeat, request)
        XCTAssertEqual(response.status, .ok)
        XCTAssertEqual(response.assignments, [Assignment(partition: 3, epoch: 8), Assignment(partition: 5, epoch: 3)])

        let echo: QueryEcho = try await client.get("/v1/echo-query", query: ["symbol": "BTC/USDT", "since": "1 h"])
        XCTAssertEqual(echo, QueryEcho(path: "/v1/echo-query", query: ["symbol": "BTC/USDT", "since": "1 h"]))

        do {
            let _: QueryEcho = try await client.get("/no/such/route")
            XCTFail("a 404 must throw")
        } catch let RPCError.status(code, text) {
            XCTAssertEqual(code, 404)
            XCTAssertTrue(text.contains("/no/such/route"))
        }
        XCTAssertEqual(server.stats.http2Connections, 1)
    }

    func testTwoHundredConcurrentCallsShareOneConnection() async throws {
        let server = try await startServer()
        let client = client(for: server)
        try await withThrowingTaskGroup(of: (Int32, HeartbeatResponse).self) { group in
            for index in 0..<200 {
                group.addTask {
                    let request = HeartbeatRequest(workerID: "w\(index)", partitions: [PartitionProgress(partition: Int32(index), epoch: 1, nextOffset: 0)])
                    return (Int32(index), try await client.call(RPCPath.heartbeat, request))
                }
            }
            var seen = Set<Int32>()
            for try await (index, response) in group {
                XCTAssertEqual(response.assignments, [Assignment(partition: index, epoch: 2)])
                seen.insert(index)
            }
            XCTAssertEqual(seen.count, 200)
        }
        XCTAssertEqual(server.stats.connections, 1, "all calls multiplexed over one connection")
        XCTAssertEqual(server.stats.requests, 200)
    }

    func testFiveMiBBodyRoundTrip() async throws {
        let server = try await startServer()
        let client = client(for: server)
        let body = [UInt8].pattern(5 << 20)
        let response = try await client.request(method: "POST", path: "/echo", body: body, timeout: .seconds(30))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body.count, body.count)
        XCTAssertTrue(response.body == body)
    }

    func testOversizedBodyGets413AndTheConnectionKeepsServing() async throws {
        let server = try await startServer(limits: HTTPLimits(maxBodyBytes: 1 << 20))
        let client = client(for: server)
        let rejected = try await client.request(method: "POST", path: "/echo", body: [UInt8].pattern(3 << 20))
        XCTAssertEqual(rejected.status, 413)
        let echo: QueryEcho = try await client.get("/v1/echo-query")
        XCTAssertEqual(echo.path, "/v1/echo-query")
        XCTAssertEqual(server.stats.rejectedBodies, 1)
        XCTAssertEqual(server.stats.connections, 1)
    }

    func testClosedPortIsUnreachableQuickly() async throws {
        let port = try await freePort()
        let client = RPCClient(host: "127.0.0.1", port: port, logger: logger)
        clients.append(client)
        let started = ContinuousClock.now
        do {
            _ = try await client.request(method: "GET", path: "/")
            XCTFail("nothing listens on \(port)")
        } catch let error as RPCError {
            XCTAssertEqual(error, .unreachable("cannot reach 127.0.0.1:\(port): connection refused (is the server running and listening on that port?)"))
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(1))
    }

    func testServerShutdownMidCallFailsTheCallInsteadOfHanging() async throws {
        let (started, startedContinuation) = AsyncStream<Void>.makeStream()
        let cancelled = Counter()
        let server = try await startServer(
            testRouter(started: startedContinuation, gate: Gate(), cancelled: cancelled),
            limits: HTTPLimits(shutdownGracePeriod: .milliseconds(100))
        )
        let client = client(for: server)
        let call = Task {
            try await client.request(method: "POST", path: "/slow", timeout: .seconds(60))
        }
        try await withDeadline(5, "the slow handler to start") {
            for await _ in started { break }
        }
        await server.shutdown()
        let outcome = try await withDeadline(5, "the call to fail") { await call.result }
        XCTAssertThrowsError(try outcome.get()) { error in
            guard case RPCError.connectionClosed(let message) = error else {
                return XCTFail("expected connectionClosed, got \(error)")
            }
            XCTAssertTrue(message.contains("POST /slow"), message)
        }
        try await waitUntil(5, "the handler to be cancelled") { cancelled.count == 1 }
    }

    func testShutdownLetsTheCallInProgressFinishAndRefusesNewConnections() async throws {
        let (started, startedContinuation) = AsyncStream<Void>.makeStream()
        let gate = Gate()
        let server = try await startServer(testRouter(started: startedContinuation, gate: gate))
        let port = server.localPort!
        let client = client(for: server)
        let call = Task {
            try await client.request(method: "POST", path: "/slow")
        }
        try await withDeadline(5, "the slow handler to start") {
            for await _ in started { break }
        }
        let shutdown = Task { await server.shutdown() }
        // The listener is closed first: a new client cannot connect.
        try await waitUntil(5, "the listener to close") {
            let probe = RPCClient(host: "127.0.0.1", port: port, logger: self.logger)
            defer { Task { await probe.close() } }
            do {
                _ = try await probe.request(method: "GET", path: "/v1/echo-query", timeout: .seconds(1))
                return false
            } catch RPCError.unreachable {
                return true
            }
        }
        gate.open()
        let response = try await withDeadline(5, "the call in progress") { try await call.value }
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self), "finally")
        try await withDeadline(5, "shutdown to return") { await shutdown.value }
    }

    func testClientReconnectsAfterTheServerRestarts() async throws {
        let first = try await startServer()
        let port = first.localPort!
        let client = client(for: first)
        let before: QueryEcho = try await client.get("/v1/echo-query")
        XCTAssertEqual(before.path, "/v1/echo-query")

        await first.shutdown()
        do {
            let _: QueryEcho = try await client.get("/v1/echo-query")
            XCTFail("the server is down")
        } catch let error as RPCError {
            guard case .unreachable = error else { return XCTFail("expected unreachable, got \(error)") }
        }

        _ = try await startServer(port: port)
        let after: QueryEcho = try await client.get("/v1/echo-query")
        XCTAssertEqual(after.path, "/v1/echo-query")
    }

    func testTimeoutFailsTheCallAndResetsTheStream() async throws {
        let cancelled = Counter()
        let server = try await startServer(testRouter(gate: Gate(), cancelled: cancelled))
        let client = client(for: server)
        do {
            _ = try await client.request(method: "POST", path: "/slow", timeout: .milliseconds(200))
            XCTFail("the handler never answers")
        } catch let error as RPCError {
            guard case .timeout(let message) = error else { return XCTFail("expected timeout, got \(error)") }
            XCTAssertTrue(message.contains("POST /slow"), message)
        }
        try await waitUntil(5, "the server to cancel the handler of the reset stream") { cancelled.count == 1 }
        let echo: QueryEcho = try await client.get("/v1/echo-query")
        XCTAssertEqual(echo.path, "/v1/echo-query", "the connection survives a timed-out call")
    }

    func testASilentServerIsDetectedAndTheNextCallReconnects() async throws {
        let silent = Locked(false)
        let accepted = Counter()
        let closed = Counter()
        let stats = Locked(HTTPServerStats())
        let logger = self.logger
        // An HTTP/2 server whose connections can go silent: a host that vanished without a FIN.
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    accepted.increment()
                    channel.closeFuture.whenComplete { _ in closed.increment() }
                    try channel.pipeline.syncOperations.addHandler(Blackhole(silent: silent))
                    try channel.pipeline.syncOperations.addHandler(HTTP2ServerConnectionHandler(handler: testRouter(), limits: .init(), stats: stats, logger: logger))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let client = RPCClient(host: "127.0.0.1", port: listener.localAddress!.port!, logger: logger, connectTimeout: .milliseconds(300))
        clients.append(client)
        let _: QueryEcho = try await client.get("/v1/echo-query")

        silent.withLock { $0 = true }
        do {
            let _: QueryEcho = try await client.get("/v1/echo-query", timeout: .milliseconds(200))
            XCTFail("the server is silent")
        } catch let error as RPCError {
            guard case .timeout = error else { return XCTFail("expected timeout, got \(error)") }
        }
        try await waitUntil(5, "the client to give up on the silent connection") { closed.count == 1 }

        silent.withLock { $0 = false }
        let echo: QueryEcho = try await client.get("/v1/echo-query")
        XCTAssertEqual(echo.path, "/v1/echo-query")
        XCTAssertEqual(accepted.count, 2, "the call after the dead connection used a new one")
    }

    func testCancellingTheCallingTaskCancelsTheCall() async throws {
        let (started, startedContinuation) = AsyncStream<Void>.makeStream()
        let cancelled = Counter()
        let server = try await startServer(testRouter(started: startedContinuation, gate: Gate(), cancelled: cancelled))
        let client = client(for: server)
        let call = Task {
            try await client.request(method: "POST", path: "/slow", timeout: .seconds(60))
        }
        try await withDeadline(5, "the slow handler to start") {
            for await _ in started { break }
        }
        call.cancel()
        let outcome = await call.result
        XCTAssertThrowsError(try outcome.get()) { XCTAssertTrue($0 is CancellationError, "\($0)") }
        try await waitUntil(5, "the server to cancel the handler") { cancelled.count == 1 }
    }

    func testClosedClientFailsCalls() async throws {
        let server = try await startServer()
        let client = client(for: server)
        let _: QueryEcho = try await client.get("/v1/echo-query")
        await client.close()
        do {
            let _: QueryEcho = try await client.get("/v1/echo-query")
            XCTFail("the client is closed")
        } catch let error as RPCError {
            guard case .connectionClosed = error else { return XCTFail("expected connectionClosed, got \(error)") }
        }
    }

    func testBindFailureNamesTheAddress() async throws {
        let server = try await startServer()
        let port = server.localPort!
        let second = HTTPServer(host: "127.0.0.1", port: port, handler: testRouter(), logger: logger)
        do {
            try await second.start()
            XCTFail("the port is taken")
        } catch let error as HTTPServerError {
            XCTAssertTrue(error.description.hasPrefix("cannot listen on 127.0.0.1:\(port): address already in use"), error.description)
        }
    }

    // MARK: - Other clients

    func testCurlGetsJSONOverHTTP2AndHTTP1() async throws {
        guard let curl = which("curl") else { throw XCTSkip("curl is not installed") }
        let server = try await startServer()
        let url = "http://127.0.0.1:\(server.localPort!)/v1/echo-query?who=curl"
        for flags in [["--http2-prior-knowledge"], []] {
            let output = try await run(curl, ["-sS", "--fail", "-w", "\\n%{http_version}"] + flags + [url])
            let lines = output.split(separator: "\n")
            XCTAssertEqual(lines.count, 2, output)
            let echo = try JSONDecoder().decode(QueryEcho.self, from: Data(lines[0].utf8))
            XCTAssertEqual(echo, QueryEcho(path: "/v1/echo-query", query: ["who": "curl"]))
            XCTAssertEqual(String(lines[1]), flags.isEmpty ? "1.1" : "2", "HTTP version used with \(flags)")
        }
        // A JSON POST over HTTP/1.1, and an HTTP/1.1 body over the limit.
        let heartbeat = try await run(curl, ["-sS", "--fail", "-H", "content-type: application/json", "--data-binary",
                                             #"{"workerID":"w","partitions":[],"rssBytes":0,"cpuSeconds":0}"#,
                                             "http://127.0.0.1:\(server.localPort!)\(RPCPath.heartbeat)"])
        XCTAssertEqual(try JSONDecoder().decode(HeartbeatResponse.self, from: Data(heartbeat.utf8)).status, .ok)
        XCTAssertEqual(server.stats.http2Connections, 1)
    }

    func testCurlHTTP1BodyOverTheLimitGets413() async throws {
        guard let curl = which("curl") else { throw XCTSkip("curl is not installed") }
        let server = try await startServer(limits: HTTPLimits(maxBodyBytes: 1000))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-protocol-\(UUID().uuidString)")
        try Data([UInt8].pattern(5000)).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let status = try await run(curl, ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@\(file.path)",
                                          "http://127.0.0.1:\(server.localPort!)/echo"])
        XCTAssertEqual(status, "413")
        XCTAssertEqual(server.stats.rejectedBodies, 1)
    }

    func testNghttpTalksToTheServer() async throws {
        guard let nghttp = which("nghttp") else { throw XCTSkip("nghttp (nghttp2-client) is not installed") }
        let server = try await startServer()
        let output = try await run(nghttp, ["-v", "http://127.0.0.1:\(server.localPort!)/v1/echo-query?tool=nghttp"])
        XCTAssertTrue(output.contains("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):128"), output)
        XCTAssertTrue(output.contains(":status: 200"), output)
        XCTAssertTrue(output.contains(#""query":{"tool":"nghttp"}"#), output)
    }

    // MARK: - Throughput, for the record

    func testPrintThroughput() async throws {
        let server = try await startServer()
        let client = client(for: server)
        let request = HeartbeatRequest(workerID: "bench", partitions: [PartitionProgress(partition: 1, epoch: 1, nextOffset: 42)])
        let _: HeartbeatResponse = try await client.call(RPCPath.heartbeat, request)  // connect

        let sequentialCalls = 2_000
        var start = ContinuousClock.now
        for _ in 0..<sequentialCalls {
            let _: HeartbeatResponse = try await client.call(RPCPath.heartbeat, request)
        }
        let sequential = Double(sequentialCalls) / (ContinuousClock.now - start).seconds

        let workers = 100
        let callsPerWorker = 100
        start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    for _ in 0..<callsPerWorker {
                        let _: HeartbeatResponse = try await client.call(RPCPath.heartbeat, request)
                    }
                }
            }
            try await group.waitForAll()
        }
        let concurrent = Double(workers * callsPerWorker) / (ContinuousClock.now - start).seconds
        print("RPC throughput (JSON heartbeat over one HTTP/2 connection): sequential \(Int(sequential)) calls/s, \(workers)-way concurrent \(Int(concurrent)) calls/s")
    }

    // MARK: - Helpers

    /// A port nothing listens on: bound once, then released.
    private func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }

    private func which(_ tool: String) -> String? {
        ["/usr/bin/", "/usr/local/bin/", "/bin/"].map { $0 + tool }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a tool to completion and returns its standard output; throws with its stderr on failure.
    private func run(_ executable: String, _ arguments: [String]) async throws -> String {
        try await withDeadline(20, "\(executable) \(arguments.joined(separator: " "))") {
            try await Task.detached {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = arguments
                let stdout = Pipe()
                let stderr = Pipe()
                process.standardOutput = stdout
                process.standardError = stderr
                try process.run()
                let output = stdout.fileHandleForReading.readDataToEndOfFile()
                let errors = stderr.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                guard process.terminationStatus == 0 else {
                    throw ToolFailed(command: "\(executable) \(arguments.joined(separator: " "))", status: process.terminationStatus, stderr: String(decoding: errors, as: UTF8.self))
                }
                return String(decoding: output, as: UTF8.self)
            }.value
        }
    }
}

/// Drops every inbound byte while `silent` holds.
final class Blackhole: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let silent: Locked<Bool>

    init(silent: Locked<Bool>) {
        self.silent = silent
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !silent.withLock({ $0 }) {
            context.fireChannelRead(data)
        }
    }
}

struct ToolFailed: Error, CustomStringConvertible {
    let command: String
    let status: Int32
    let stderr: String
    var description: String { "\(command) exited with \(status): \(stderr)" }
}

extension Duration {
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }
}
