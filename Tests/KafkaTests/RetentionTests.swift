import Kafka
import XCTest

/// The embedded broker keeps ~5 MiB per partition; a consumer must see when what it asks for is gone.
final class RetentionTests: KafkaTestCase {
    func testOffsetsBelowLogStartAreReportedAsLostAndDeliveryStartsAtTheLogStart() throws {
        let broker = try EmbeddedBroker(topic: "retention", partitions: 1, logger: logger)
        defer { broker.shutdown() }
        // 2,000 x 4 KiB of random bytes: lz4 cannot shrink them, so ~8 MiB overflow the ~5 MiB log.
        let producer = try KafkaProducer(brokers: broker.bootstrap, logger: logger)
        var generator = SplitMix64(seed: 42)
        let count = 2_000
        for i in 0..<count {
            let payload = (0..<512).map { _ in generator.next() as UInt64 }
            try payload.withUnsafeBytes { value in
                try Array("k\(i)".utf8).withUnsafeBytes { key in
                    try producer.produce(topic: "retention", key: key, value: value, partition: 0)
                }
            }
        }
        XCTAssertEqual(try producer.flush(timeoutMs: 20_000).delivered, count)
        producer.close()

        let consumer = try KafkaConsumer(brokers: broker.bootstrap, logger: logger)
        defer { consumer.close() }
        let marks = try consumer.queryWatermarks(topic: "retention", partition: 0, timeoutMs: 5_000)
        XCTAssertGreaterThan(marks.low, 0, "retention moved the log start")
        XCTAssertEqual(marks.high, Int64(count))

        try consumer.assign(topic: "retention", partitions: [(partition: 0, offset: 0)])
        var events: [String] = []  // "lost a..<b" and "record n", in the order poll reported them
        var lost: [Range<Int64>] = []
        var offsets: [Int64] = []
        consume(consumer, awaiting: "the records from the log start to \(count - 1)", until: { offsets.last == Int64(count - 1) }, record: {
            offsets.append($0.offset)
            if offsets.count == 1 { events.append("record \($0.offset)") }
        }, error: { error in
            if error.code == .offsetsLost, let range = error.lostOffsets {
                lost.append(range)
                events.append("lost \(range.lowerBound)..<\(range.upperBound)")
            }
        })
        let first = try XCTUnwrap(offsets.first)
        XCTAssertGreaterThan(first, 0)
        XCTAssertGreaterThanOrEqual(first, marks.low)
        XCTAssertEqual(offsets, Array(first..<Int64(count)), "dense after the jump")
        XCTAssertEqual(lost, [0..<first])
        XCTAssertEqual(events, ["lost 0..<\(first)", "record \(first)"], "the loss is reported before the first record")
        XCTAssertGreaterThan(try XCTUnwrap(consumer.cachedWatermarks(topic: "retention", partition: 0)).low, 0)
    }

    func testOffsetBeyondLogEndIsReportedAsRewound() throws {
        let broker = try EmbeddedBroker(topic: "restarted", partitions: 1, logger: logger)
        defer { broker.shutdown() }
        let producer = try KafkaProducer(brokers: broker.bootstrap, logger: logger)
        for i in 0..<20 {
            try producer.produce(topic: "restarted", key: Array("k".utf8), value: Array("v\(i)".utf8), partition: 0)
        }
        XCTAssertEqual(try producer.flush(timeoutMs: 10_000).delivered, 20)
        producer.close()

        // As after a restart of the embedded broker: a checkpoint points past the (new) log end.
        let consumer = try KafkaConsumer(brokers: broker.bootstrap, logger: logger)
        defer { consumer.close() }
        try consumer.assign(topic: "restarted", partitions: [(partition: 0, offset: 5_000)])
        var rewound: [KafkaError] = []
        var offsets: [Int64] = []
        consume(consumer, awaiting: "the 20 records after the reset", until: { offsets.count >= 20 }, record: { offsets.append($0.offset) }, error: { error in
            if error.code == .offsetRewound { rewound.append(error) }
        })
        XCTAssertEqual(offsets, Array(0..<20))
        XCTAssertEqual(rewound.count, 1)
        XCTAssertEqual(rewound.first?.offset, 0)
        XCTAssertTrue(rewound.first?.message.contains("expected offset 5000") ?? false, rewound.first?.message ?? "")
    }
}

/// A fast seeded generator: random enough that lz4 finds nothing to compress.
private struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
