import Foundation
import Logging
import XCTest
@testable import Protocol

/// Log lines of one test, shown only when it fails (STYLE.md §7).
final class LogCapture: @unchecked Sendable {  // unchecked: `lines` is only touched under `lock`
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return lines.joined(separator: "\n")
    }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        capture.append("\(event.level) \(event.message) \(fields)")
    }
}

/// Base class: a logger whose output is printed only when the test fails.
class ProtocolTestCase: XCTestCase {
    let logs = LogCapture()

    lazy var logger: Logger = {
        let capture = logs
        var logger = Logger(label: "vigil.protocol.tests") { _ in CapturingLogHandler(capture: capture) }
        logger.logLevel = .debug
        return logger
    }()

    override func tearDown() {
        if let run = testRun, run.totalFailureCount > 0 {
            print("--- logs of \(name) ---\n\(logs.text)\n---")
        }
        super.tearDown()
    }
}

struct DeadlineExceeded: Error, CustomStringConvertible {
    let what: String
    let seconds: Double
    var description: String { "gave up after \(seconds) s waiting for \(what)" }
}

/// Runs `body`, failing with `DeadlineExceeded` if it has not finished after `seconds`
/// (`body` is cancelled then; it must respond to cancellation).
func withDeadline<T: Sendable>(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw DeadlineExceeded(what: what, seconds: seconds)
        }
        return value
    }
}

/// Polls `condition` until it holds, failing after `seconds`.
func waitUntil(_ seconds: Double = 5, _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw DeadlineExceeded(what: what, seconds: seconds) }
        try await Task.sleep(for: .milliseconds(2))
    }
}

/// A one-shot signal between a test and a request handler: the handler waits, the test opens.
/// `wait()` returns false when the waiting task was cancelled before the gate opened.
final class Gate: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream()
    }

    func open() {
        continuation.finish()
    }

    func wait() async -> Bool {
        for await _ in stream {}
        return !Task.isCancelled
    }
}

/// Counts events across tasks.
final class Counter: Sendable {
    private let value = Locked(0)
    func increment() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
}

/// The answer of `GET /v1/echo-query`: what the server saw.
struct QueryEcho: Codable, Sendable, Equatable {
    var path: String
    var query: [String: String]
}

/// Routes every test server serves.
///
/// - `POST /rpc/heartbeat`: the `Messages.swift` heartbeat, answering each reported partition as an assignment.
/// - `POST /echo`: the body back, as is.
/// - `GET /v1/echo-query`: `QueryEcho`.
/// - `POST /slow`: signals `started`, waits for `gate`; counts in `cancelled` when its task is
///   cancelled instead (client reset, connection closed).
func testRouter(started: AsyncStream<Void>.Continuation? = nil, gate: Gate? = nil, cancelled: Counter? = nil) -> RPCRouter {
    var router = RPCRouter()
    router.post(RPCPath.heartbeat, json: { (request: HeartbeatRequest) -> HeartbeatResponse in
        HeartbeatResponse(status: .ok, assignments: request.partitions.map { Assignment(partition: $0.partition, epoch: $0.epoch + 1) })
    })
    router.post("/echo") { request, _ in
        HTTPResponse(status: 200, headers: [("content-type", "application/octet-stream")], body: request.body)
    }
    router.get("/v1/echo-query") { request, _ in
        .json(QueryEcho(path: request.path, query: request.query))
    }
    router.post("/slow") { _, _ in
        started?.yield()
        if let gate, await !gate.wait() {
            cancelled?.increment()
            return .text("cancelled", status: 503)
        }
        return .text("finally")
    }
    return router
}

extension Array where Element == UInt8 {
    /// Deterministic bytes of the given length (not all equal, so misordered chunks show).
    static func pattern(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
    }
}
