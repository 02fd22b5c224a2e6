import Foundation
import Ingest
import Kafka
import Logging
import NIOPosix
import Synchronization
import XCTest

/// Base class: a logger whose lines are kept in memory and printed only when the test fails,
/// a scratch directory, and a way to read a topic back with a deadline.
class IngestTestCase: XCTestCase {
    private let captured = CapturedLines()
    private(set) var logger = Logger(label: "ingest-tests")
    private(set) var directory: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        captured.clear()
        let captured = self.captured
        logger = Logger(label: "ingest-tests") { label in CapturingLogHandler(label: label, sink: captured) }
        logger.logLevel = .trace
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-ingest-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let run = testRun, run.totalFailureCount > 0 {
            print("---- captured log of \(name) ----")
            captured.lines.forEach { print($0) }
            print("---- end of captured log ----")
        }
        try? FileManager.default.removeItem(at: directory)
        try super.tearDownWithError()
    }

    /// Every line logged so far (message and metadata), for checks such as "no secret leaked".
    var logLines: [String] { captured.lines }

    /// Reads `topic` from the beginning of every partition until `count` records arrived,
    /// failing (with what was awaited) if `timeout` passes first; then goes on reading for
    /// `settle`, so that records beyond the expected ones are returned too. Yields between polls
    /// so that a feed running in another task keeps going.
    func readTopic(
        _ topic: String, partitions: Int32, brokers: String, count: Int, timeout: Duration = .seconds(60),
        settle: Duration = .zero, file: StaticString = #filePath, line: UInt = #line
    ) async throws -> [TopicRecord] {
        let consumer = try KafkaConsumer(brokers: brokers, logger: logger)
        defer { consumer.close() }
        try consumer.assign(topic: topic, partitions: (0..<partitions).map { ($0, KafkaOffset.beginning) })
        var records: [TopicRecord] = []
        let deadline = ContinuousClock.now + timeout
        while records.count < count {
            guard ContinuousClock.now < deadline else {
                XCTFail("timed out after \(timeout) awaiting \(count) records on \(topic); got \(records.count)", file: file, line: line)
                return records
            }
            _ = consumer.poll(max: 4096, timeoutMs: 20, { records.append(TopicRecord($0)) }, onError: { _ in })
            await Task.yield()
        }
        let settled = ContinuousClock.now + settle
        while ContinuousClock.now < settled {
            _ = consumer.poll(max: 4096, timeoutMs: 20, { records.append(TopicRecord($0)) }, onError: { _ in })
            await Task.yield()
        }
        return records
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
func unusedLoopbackPort() throws -> Int {
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
    let port = channel.localAddress?.port ?? 9
    try channel.close().wait()
    return port
}

/// A sink that takes every record and keeps nothing, for feeds that never deliver.
struct DiscardingSink: RecordSink {
    func send(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws {}
    func poll() {}
    func finish(timeoutMs: Int32) -> DeliveryReport { DeliveryReport(delivered: 0, failed: 0, pending: 0) }
}

/// A record read back from a topic.
struct TopicRecord: Equatable {
    var partition: Int32
    var offset: Int64
    var key: String
    var value: String

    init(_ record: KafkaRecord) {
        partition = record.partition
        offset = record.offset
        key = String(decoding: record.key, as: UTF8.self)
        value = String(decoding: record.value, as: UTF8.self)
    }
}

/// Log lines kept for a test.
final class CapturedLines: Sendable {
    private let storage = Mutex<[String]>([])

    func append(_ line: String) { storage.withLock { $0.append(line) } }
    func clear() { storage.withLock { $0.removeAll() } }
    var lines: [String] { storage.withLock { $0 } }
}

struct CapturingLogHandler: LogHandler {
    let label: String
    let sink: CapturedLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        sink.append("\(event.level) \(event.message) \(fields)")
    }
}

/// Collects what a feed reports while it runs in another task.
final class EventLog<Event: Sendable>: Sendable {
    private let storage = Mutex<[Event]>([])

    func append(_ event: Event) { storage.withLock { $0.append(event) } }
    var all: [Event] { storage.withLock { $0 } }

    /// Polls until `condition` holds for the events so far, failing after `timeout`.
    func wait(
        for what: String, timeout: Duration = .seconds(30), file: StaticString = #filePath, line: UInt = #line,
        until condition: ([Event]) -> Bool
    ) async {
        let deadline = ContinuousClock.now + timeout
        while !condition(all) {
            guard ContinuousClock.now < deadline else {
                XCTFail("timed out after \(timeout) awaiting \(what); events: \(all)", file: file, line: line)
                return
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}
