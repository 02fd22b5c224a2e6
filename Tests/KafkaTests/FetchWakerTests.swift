import Foundation
import Kafka
import XCTest

/// `KafkaFetchWaker`: with a queue far smaller than the backlog, fetching stops whenever the
/// queue fills; waking the leader after each drain gets every record through, and the waker
/// stops cleanly before the consumer closes. (How much faster that is, `make bench` measures.)
final class FetchWakerTests: KafkaTestCase {
    func testWakingTheLeaderAfterEachDrainDeliversAWholeBacklogThroughATinyQueue() throws {
        let broker = try EmbeddedBroker(topic: "backlog", partitions: 2, logger: logger)
        defer { broker.shutdown() }
        let producer = try KafkaProducer(brokers: broker.bootstrap, logger: logger)
        let total = 20_000
        for i in 0..<total {
            try producer.produce(topic: "backlog", key: Array("k\(i % 7)".utf8), value: Array("record \(i)".utf8), partition: Int32(i % 2))
        }
        XCTAssertEqual(try producer.flush(timeoutMs: 30_000).delivered, total)
        producer.close()

        let consumer = try KafkaConsumer(brokers: broker.bootstrap, properties: ["queued.min.messages": "500"], logger: logger)
        defer { consumer.close() }
        XCTAssertEqual(consumer.queuedMinMessages, 500, "the setting in effect is read back from librdkafka")
        let waker = consumer.makeFetchWaker(topic: "backlog")
        try consumer.assign(topic: "backlog", partitions: [(0, 0), (1, 0)])

        // As the worker's loop does: small bites, and a wake-up whenever the queue runs low.
        var received = 0
        var nextOffset: [Int64] = [0, 0]
        consume(consumer, awaiting: "\(total) records through a 500-record queue", until: { received == total }, record: { record in
            XCTAssertEqual(record.offset, nextOffset[Int(record.partition)], "in order, none twice")
            nextOffset[Int(record.partition)] = record.offset + 1
            received += 1
            if consumer.queuedRecords < 250 { waker.wake(partitions: [0, 1]) }
        })
        XCTAssertGreaterThan(waker.sent, 0, "wake-ups were sent (one request per leader) on the waker's thread")
        waker.stop()
        let sent = waker.sent
        waker.wake(partitions: [0])
        usleep(20_000)
        XCTAssertEqual(waker.sent, sent, "nothing is sent after stop()")
        XCTAssertEqual(received, total, "no record twice")
    }
}
