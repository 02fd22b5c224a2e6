import Foundation
import Kafka
import Logging
import Synchronization
import XCTest

/// Base class: a logger whose lines are kept in memory and printed only when the test fails,
/// plus helpers to consume with a deadline.
class KafkaTestCase: XCTestCase {
    private let captured = CapturedLog()
    private(set) var logger = Logger(label: "kafka-tests")

    override func setUp() {
        super.setUp()
        captured.clear()
        let captured = self.captured
        logger = Logger(label: "kafka-tests") { label in CapturingLogHandler(label: label, sink: captured) }
        logger.logLevel = .debug
    }

    override func tearDown() {
        if let run = testRun, run.totalFailureCount > 0 {
            print("---- captured log of \(name) ----")
            captured.lines.forEach { print($0) }
            print("---- end of captured log ----")
        }
        super.tearDown()
    }

    /// Polls `consumer` until `done()` holds, failing with `awaiting` if `timeout` passes first.
    func consume(
        _ consumer: KafkaConsumer, awaiting: String, timeout: TimeInterval = 20,
        until done: () -> Bool, record: (KafkaRecord) -> Void, error: (KafkaError) -> Void = { _ in },
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let deadline = Date().addingTimeInterval(timeout)
        while !done() {
            guard Date() < deadline else {
                XCTFail("timed out after \(timeout) s awaiting \(awaiting)", file: file, line: line)
                return
            }
            _ = consumer.poll(max: 4096, timeoutMs: 50, record, onError: error)
        }
    }
}

/// A consumed record copied out of librdkafka's buffer.
struct ConsumedRecord: Equatable {
    var partition: Int32
    var offset: Int64
    var key: [UInt8]
    var value: [UInt8]

    init(_ record: KafkaRecord) {
        partition = record.partition
        offset = record.offset
        key = Array(record.key)
        value = Array(record.value)
    }

    var keyString: String { String(decoding: key, as: UTF8.self) }
    var valueString: String { String(decoding: value, as: UTF8.self) }
}

/// The Java client's murmur2 partitioner, which librdkafka's `murmur2_random` reproduces:
/// partition = (murmur2(key) & 0x7fffffff) % partitionCount.
enum JavaPartitioner {
    static func partition(forKey key: [UInt8], partitionCount: Int32) -> Int32 {
        Int32(bitPattern: murmur2(key) & 0x7fff_ffff) % partitionCount
    }

    static func murmur2(_ data: [UInt8]) -> UInt32 {
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        var h: UInt32 = 0x9747_b28c ^ UInt32(data.count)
        let blocks = data.count / 4
        for block in 0..<blocks {
            let i = block * 4
            var k = UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24
            k &*= m
            k ^= k >> r
            k &*= m
            h &*= m
            h ^= k
        }
        let tail = blocks * 4
        switch data.count % 4 {
        case 3:
            h ^= UInt32(data[tail + 2]) << 16
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h &*= m
        case 2:
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h &*= m
        case 1:
            h ^= UInt32(data[tail])
            h &*= m
        default:
            break
        }
        h ^= h >> 13
        h &*= m
        h ^= h >> 15
        return h
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound once by the kernel's pick, then closed).
func unusedLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    precondition(fd >= 0, "socket() failed")
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddr in
            bind(fd, sockaddr, length) == 0 && getsockname(fd, sockaddr, &length) == 0
        }
    }
    precondition(bound, "bind() to 127.0.0.1:0 failed")
    return Int(UInt16(bigEndian: address.sin_port))
}

private final class CapturedLog: Sendable {
    private let storage = Mutex<[String]>([])
    func append(_ line: String) { storage.withLock { $0.append(line) } }
    func clear() { storage.withLock { $0.removeAll() } }
    var lines: [String] { storage.withLock { $0 } }
}

private struct CapturingLogHandler: LogHandler {
    let label: String
    let sink: CapturedLog
    var logLevel: Logger.Level = .debug
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let rendered = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        sink.append("\(event.level) \(event.message)\(rendered)")
    }
}
