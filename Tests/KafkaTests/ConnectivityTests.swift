import Foundation
import Kafka
import XCTest

/// Misconfiguration fails fast with one clear line, never a hang.
final class ConnectivityTests: KafkaTestCase {
    func testUnreachableBrokerFailsQuicklyNamingBootstrapServers() throws {
        let address = "127.0.0.1:\(unusedLoopbackPort())"
        let attempts: [(String, () throws -> Void)] = [
            ("check", { try KafkaConnectivity.check(brokers: address, timeoutMs: 10_000, logger: self.logger) }),
            ("producer", { _ = try KafkaProducer(brokers: address, logger: self.logger, connectTimeoutMs: 10_000) }),
            ("consumer", { _ = try KafkaConsumer(brokers: address, logger: self.logger, connectTimeoutMs: 10_000) }),
            ("admin", { _ = try KafkaAdmin.ensureTopic(brokers: address, properties: [:], topic: "t", partitions: 1, logger: self.logger, timeoutMs: 10_000) }),
        ]
        for (what, attempt) in attempts {
            let started = Date()
            XCTAssertThrowsError(try attempt(), what) { error in
                let error = error as? KafkaError
                XCTAssertEqual(error?.code, .brokerUnreachable, what)
                let message = error?.message ?? ""
                XCTAssertTrue(message.contains("cannot reach broker \(address) (bootstrap.servers)"), "\(what): \(message)")
                XCTAssertTrue(message.contains("Connection refused"), "\(what): \(message)")
            }
            XCTAssertLessThan(Date().timeIntervalSince(started), 5, "\(what) must not wait for its whole timeout on a refused connection")
        }
    }

    func testInvalidPropertyIsRejectedByName() {
        XCTAssertThrowsError(try KafkaProducer(brokers: "127.0.0.1:1", properties: ["linger.ms": "soon"], logger: logger)) { error in
            let error = error as? KafkaError
            XCTAssertEqual(error?.code, .invalidConfiguration)
            XCTAssertTrue(error?.message.contains("kafka property linger.ms = 'soon' rejected") ?? false, error?.message ?? "")
        }
        XCTAssertThrowsError(try KafkaConsumer(brokers: "127.0.0.1:1", properties: ["no.such.setting": "1"], logger: logger)) { error in
            XCTAssertTrue((error as? KafkaError)?.message.contains("no.such.setting") ?? false, "\(error)")
        }
        XCTAssertThrowsError(try KafkaConsumer(brokers: "127.0.0.1:1", properties: ["sasl.password": "hunter2", "sasl.mechanism": "NOPE"], logger: logger)) { error in
            XCTAssertFalse("\(error)".contains("hunter2"), "secrets stay out of messages: \(error)")
        }
    }

    func testEnsureTopicAcceptsMatchingCountAndExplainsTheRest() throws {
        let broker = try EmbeddedBroker(topic: "trades", partitions: 6, logger: logger)
        defer { broker.shutdown() }
        XCTAssertEqual(try KafkaAdmin.ensureTopic(brokers: broker.bootstrap, properties: [:], topic: "trades", partitions: 6, logger: logger), 6)

        XCTAssertThrowsError(try KafkaAdmin.ensureTopic(brokers: broker.bootstrap, properties: [:], topic: "trades", partitions: 8, logger: logger)) { error in
            let error = error as? KafkaError
            XCTAssertEqual(error?.code, .partitionCountMismatch)
            XCTAssertTrue(error?.message.contains("has 6 partitions but the configuration asks for 8") ?? false, error?.message ?? "")
        }

        // The mock cluster has no CreateTopics: a clear error, and no topic auto-created behind our back.
        XCTAssertThrowsError(try KafkaAdmin.ensureTopic(brokers: broker.bootstrap, properties: [:], topic: "missing", partitions: 3, logger: logger, timeoutMs: 1_000)) { error in
            let error = error as? KafkaError
            XCTAssertEqual(error?.code, .topicCreationFailed)
            XCTAssertTrue(error?.message.contains("missing") ?? false, error?.message ?? "")
        }
        let consumer = try KafkaConsumer(brokers: broker.bootstrap, logger: logger)
        defer { consumer.close() }
        XCTAssertThrowsError(try consumer.partitionCount(topic: "missing", timeoutMs: 5_000)) { error in
            XCTAssertEqual((error as? KafkaError)?.code, .unknownTopic)
        }
    }
}
