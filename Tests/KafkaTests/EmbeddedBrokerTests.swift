import Foundation
import Kafka
import XCTest

final class EmbeddedBrokerTests: KafkaTestCase {
    func testFixedPortBootstrapWorksForOurClientsAndKcat() throws {
        let port = unusedLoopbackPort()
        let broker = try EmbeddedBroker(topic: "fixed", partitions: 3, port: port, logger: logger)
        defer { broker.shutdown() }
        XCTAssertEqual(broker.bootstrap, "127.0.0.1:\(port)")
        XCTAssertNotEqual(broker.advertisedAddress, broker.bootstrap, "the mock keeps its own ephemeral port")

        let producer = try KafkaProducer(brokers: broker.bootstrap, logger: logger)
        for i in 0..<30 {
            try producer.produce(topic: "fixed", key: Array("k\(i)".utf8), value: Array("v\(i)".utf8))
        }
        XCTAssertEqual(try producer.flush(timeoutMs: 10_000).delivered, 30)
        producer.close()

        let consumer = try KafkaConsumer(brokers: broker.bootstrap, logger: logger)
        defer { consumer.close() }
        XCTAssertEqual(try consumer.partitionCount(topic: "fixed", timeoutMs: 5_000), 3)
        try consumer.assign(topic: "fixed", partitions: (0..<3).map { (partition: $0, offset: 0) })
        var values = Set<String>()
        consume(consumer, awaiting: "30 records through the fixed port", until: { values.count >= 30 }, record: {
            values.insert(ConsumedRecord($0).valueString)
        })
        XCTAssertEqual(values, Set((0..<30).map { "v\($0)" }))

        let kcat = ["/usr/bin/kcat", "/usr/local/bin/kcat"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let kcat else {
            print("kcat not installed: skipping the `kcat -L` check of the fixed port")
            return
        }
        let listing = try run(kcat, ["-b", broker.bootstrap, "-L", "-t", "fixed", "-m", "5"])
        XCTAssertTrue(listing.contains("topic \"fixed\" with 3 partitions"), listing)
        XCTAssertTrue(listing.contains(broker.advertisedAddress), "metadata advertises the mock's own address: \(listing)")
    }

    func testProducerAndConsumerRideOutAnUnreachableBrokerWithoutLosingRecords() throws {
        let broker = try EmbeddedBroker(topic: "outage", partitions: 1, logger: logger)
        defer { broker.shutdown() }
        let fastReconnect = ["reconnect.backoff.ms": "50", "reconnect.backoff.max.ms": "200"]
        let producer = try KafkaProducer(brokers: broker.bootstrap, properties: fastReconnect, logger: logger)
        defer { producer.close() }
        let consumer = try KafkaConsumer(brokers: broker.bootstrap, properties: fastReconnect, logger: logger)
        defer { consumer.close() }
        try consumer.assign(topic: "outage", partitions: [(partition: 0, offset: 0)])
        var caughtUp = false
        consume(consumer, awaiting: "end of the empty partition", until: { caughtUp }, record: { _ in }, error: { error in
            if error.code == .partitionEOF { caughtUp = true }
        })

        try broker.setReachable(false)
        for i in 0..<10 {
            try producer.produce(topic: "outage", key: Array("k".utf8), value: Array("during-\(i)".utf8))
        }
        XCTAssertThrowsError(try producer.flush(timeoutMs: 1_000)) { error in
            let error = error as? KafkaError
            XCTAssertEqual(error?.code, .flushTimedOut)
            XCTAssertTrue(error?.message.contains("bootstrap.servers") ?? false, error?.message ?? "")
        }
        var clientErrors: [KafkaError] = []
        consume(consumer, awaiting: "a client error while the broker is down", until: { !clientErrors.isEmpty }, record: { record in
            XCTFail("no record can arrive while the broker is down (offset \(record.offset))")
        }, error: { error in
            if error.code == .client { clientErrors.append(error) }
        })

        try broker.setReachable(true)
        let counts = try producer.flush(timeoutMs: 15_000)
        XCTAssertEqual(counts.delivered, 10)
        XCTAssertEqual(counts.failed, 0)
        var values: [String] = []
        consume(consumer, awaiting: "the 10 records produced during the outage", until: { values.count >= 10 }, record: {
            values.append(ConsumedRecord($0).valueString)
        })
        XCTAssertEqual(values, (0..<10).map { "during-\($0)" })
    }

    private func run(_ executable: String, _ arguments: [String]) throws -> String {
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
