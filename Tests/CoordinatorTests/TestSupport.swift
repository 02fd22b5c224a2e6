import Coordinator
import Detection
import Foundation
import Logging
import Protocol
import Synchronization
import XCTest

/// A clock tests move by hand: coordinator time never advances on its own.
final class ManualClock: Sendable {
    private let ms: Mutex<Int64>

    init(_ start: Int64) { ms = Mutex(start) }

    var now: Int64 { ms.withLock { $0 } }

    func advance(by delta: Int64) { ms.withLock { $0 += delta } }

    var read: @Sendable () -> Int64 { { self.now } }
}

/// Log lines captured in memory; printed by `CoordinatorTestCase` only when a test fails.
final class CapturedLogs: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
    func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }

    func logger(_ label: String) -> Logger {
        var logger = Logger(label: label) { _ in Handler(sink: self) }
        logger.logLevel = .debug
        return logger
    }

    private struct Handler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            sink.append("\(event.level) \(event.message) \(fields)")
        }
    }
}

/// Gives each test a fresh temporary directory and captured logs, shown only on failure.
class CoordinatorTestCase: XCTestCase {
    private(set) var directory: URL!
    let logs = CapturedLogs()

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-coordinator-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let run = testRun, run.failureCount + run.unexpectedExceptionCount > 0 {
            print("captured logs of \(name):\n" + logs.all.joined(separator: "\n"))
        }
        try? FileManager.default.removeItem(at: directory)
    }

    var databasePath: String { directory.appendingPathComponent("coordinator.sqlite").path }

    func openStore() throws -> CoordinatorStore {
        try CoordinatorStore(path: databasePath)
    }

    static func settings(partitions: Int32 = 12) -> WorkerSettings {
        WorkerSettings(
            clusterName: "test", kafka: KafkaSettings(brokers: "127.0.0.1:9092", partitions: partitions),
            detection: DetectionConfig(), heartbeatIntervalMs: 1_000, leaseTimeoutMs: 6_000, checkpointIntervalMs: 10_000)
    }

    func makeNode(store: CoordinatorStore, clock: ManualClock, partitions: Int32 = 12, handoffTimeoutMs: Int64 = 15_000) throws -> CoordinatorNode {
        let config = CoordinatorConfig(
            databasePath: store.path, listenAddress: "127.0.0.1:7070", settings: Self.settings(partitions: partitions),
            handoffTimeoutMs: handoffTimeoutMs)
        return try CoordinatorNode(config: config, store: store, logger: logs.logger("coordinator"), clock: clock.read)
    }
}

// MARK: - Fixtures

func anomaly(
    _ symbol: String, _ kind: AnomalyKind, _ severity: Severity, windowStartMs: Int64, partition: Int32 = 0, offset: Int64 = 0
) -> Anomaly {
    Anomaly(
        id: Anomaly.makeID(symbol: symbol, windowStartMs: windowStartMs, kind: kind), symbol: symbol, kind: kind,
        severity: severity, quality: .high, windowStartMs: windowStartMs, windowEndMs: windowStartMs + 60_000,
        detectedAtMs: windowStartMs + 70_000, value: -0.031, expected: 0.0004, scores: ["z_return": -6.2, "volume_ratio": 4.5],
        description: "\(symbol) \(kind.rawValue)", suppressed: false, partition: partition, offset: offset)
}

func window(_ symbol: String, startMs: Int64) -> WindowSummary {
    WindowSummary(
        symbol: symbol, startMs: startMs, endMs: startMs + 60_000, count: 412, baseVolume: 3.25, quoteVolume: 198_000,
        vwap: 60_923.5, open: 60_900, high: 61_010, low: 60_850.5, close: 60_990, logReturn: 0.00148, volatility: 0.00031,
        takerBuyRatio: 0.56, largestTrade: 0.8, longestGapMs: 1_250)
}

// MARK: - HTTP helpers (real JSON bodies through `handle`)

extension CoordinatorNode {
    func post<Body: Encodable, Answer: Decodable>(_ path: String, _ body: Body, as: Answer.Type = Answer.self, file: StaticString = #filePath, line: UInt = #line) async throws -> Answer {
        let response = await handle(HTTPRequest(method: "POST", path: path, headers: [("content-type", "application/json")], body: Array(try JSONEncoder().encode(body))))
        XCTAssertEqual(response.status, 200, "POST \(path): \(String(decoding: response.body, as: UTF8.self))", file: file, line: line)
        return try response.decode(Answer.self)
    }

    func get<Answer: Decodable>(_ path: String, query: [String: String] = [:], as: Answer.Type = Answer.self, file: StaticString = #filePath, line: UInt = #line) async throws -> Answer {
        let response = await handle(HTTPRequest(method: "GET", path: path, query: query))
        XCTAssertEqual(response.status, 200, "GET \(path) \(query): \(String(decoding: response.body, as: UTF8.self))", file: file, line: line)
        return try response.decode(Answer.self)
    }

    func registerWorker(_ id: String) async throws -> RegisterResponse {
        try await post(RPCPath.register, RegisterRequest(workerID: id, address: "10.0.0.\(id.count)", pid: 4242))
    }

    /// A heartbeat listing `running` as the worker's tasks (progress at offset 0).
    func beat(_ id: String, running: [Assignment] = []) async throws -> HeartbeatResponse {
        try await post(RPCPath.heartbeat, HeartbeatRequest(workerID: id, partitions: running.map { PartitionProgress(partition: $0.partition, epoch: $0.epoch, nextOffset: 0) }))
    }
}

extension HTTPResponse {
    var text: String { String(decoding: body, as: UTF8.self) }
}
