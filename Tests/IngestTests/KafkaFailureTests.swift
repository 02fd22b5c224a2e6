import Foundation
import Kafka
import XCTest

/// The producer's failures are one line naming the cause and the setting to check, and never
/// show a secret, neither in the error nor in the log.
final class KafkaFailureTests: IngestTestCase {
    private let password = "s3cr3t-Pa55word"

    func testClosedPortNamesBootstrapServers() throws {
        let address = "127.0.0.1:\(try unusedLoopbackPort())"
        XCTAssertThrowsError(try KafkaProducer(brokers: address, logger: logger, connectTimeoutMs: 10_000)) { error in
            let error = error as? KafkaError
            XCTAssertEqual(error?.code, .brokerUnreachable)
            let message = error?.message ?? ""
            XCTAssertTrue(message.hasPrefix("cannot reach broker \(address) (bootstrap.servers): "), message)
            XCTAssertTrue(message.contains("Connection refused"), message)
            XCTAssertTrue(message.contains("check that a Kafka broker listens there"), message)
            XCTAssertFalse(message.contains("\n"), "one line")
        }
    }

    /// Wrong credentials against a broker that requires SASL/PLAIN: the error names the SASL
    /// settings; the password reached the broker but appears in no error and no log line, even
    /// with librdkafka's debug logging on.
    func testRefusedCredentialsNameTheSASLSettingsAndNeverThePassword() throws {
        let broker = try FakeSASLBroker()
        defer { broker.shutdown() }
        let properties = [
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": "vigil-ingest", "sasl.password": password, "debug": "broker,security,protocol,conf",
        ]
        let started = ContinuousClock.now
        XCTAssertThrowsError(try KafkaProducer(brokers: broker.bootstrap, properties: properties, logger: logger, connectTimeoutMs: 10_000)) { error in
            let error = error as? KafkaError
            XCTAssertEqual(error?.code, .authenticationFailed)
            let message = error?.message ?? ""
            XCTAssertTrue(message.hasPrefix("authentication with broker \(broker.bootstrap) (bootstrap.servers) failed: "), message)
            XCTAssertTrue(message.contains("Invalid username or password"), "the broker's reason: \(message)")
            XCTAssertTrue(message.contains("sasl.mechanism, sasl.username and sasl.password"), message)
            XCTAssertFalse(message.contains(password), message)
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5), "a refused login fails at once, not after the timeout")
        XCTAssertThrowsError(try KafkaConsumer(brokers: broker.bootstrap, properties: properties, logger: logger, connectTimeoutMs: 10_000)) { error in
            XCTAssertEqual((error as? KafkaError)?.code, .authenticationFailed, "the consumer too")
            XCTAssertFalse("\(error)".contains(password))
        }
        XCTAssertTrue(broker.receivedPlainPayloads.contains(Array("\0vigil-ingest\0\(password)".utf8)), "the credentials were sent")
        XCTAssertFalse(logLines.isEmpty)
        XCTAssertTrue(logLines.contains { $0.contains("sasl.password = [redacted]") }, "librdkafka's config dump ran, redacted")
        XCTAssertEqual(logLines.filter { $0.contains(password) }, [], "no log line shows the password")
    }

    /// A SASL client against a broker without SASL (the embedded broker): named as an
    /// authentication failure, so the operator checks security.protocol.
    func testSASLAgainstAPlainListenerNamesSecurityProtocol() throws {
        let broker = try EmbeddedBroker(topic: "trades", partitions: 1, logger: logger)
        defer { broker.shutdown() }
        let properties = ["security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": "u", "sasl.password": password]
        XCTAssertThrowsError(try KafkaProducer(brokers: broker.bootstrap, properties: properties, logger: logger, connectTimeoutMs: 10_000)) { error in
            let error = error as? KafkaError
            XCTAssertEqual(error?.code, .authenticationFailed)
            let message = error?.message ?? ""
            XCTAssertTrue(message.contains("SASL Handshake not supported by broker"), message)
            XCTAssertTrue(message.contains("security.protocol"), message)
            XCTAssertFalse(message.contains(password), message)
        }
    }

    /// TLS to a broker whose certificate is not trusted: named as a TLS failure pointing at ssl.ca.location.
    func testUntrustedBrokerCertificateNamesTheTLSSettings() throws {
        let certificate = try TestCertificate(in: directory)
        let listener = try BinanceStreamServer(plans: [], tls: try certificate.serverConfiguration())  // any TLS listener
        defer { listener.shutdown() }
        let address = "localhost:\(listener.port)"
        let properties = ["security.protocol": "SSL", "ssl.key.password": password]
        XCTAssertThrowsError(try KafkaProducer(brokers: address, properties: properties, logger: logger, connectTimeoutMs: 10_000)) { error in
            let error = error as? KafkaError
            XCTAssertEqual(error?.code, .tlsFailed)
            let message = error?.message ?? ""
            XCTAssertTrue(message.hasPrefix("TLS with broker \(address) (bootstrap.servers) failed: "), message)
            XCTAssertTrue(message.contains("certificate verify failed"), message)
            XCTAssertTrue(message.contains("ssl.ca.location"), message)
        }
        XCTAssertEqual(logLines.filter { $0.contains(password) }, [])
    }

    /// A plain client against a TLS listener: unreachable, with librdkafka's hint at security.protocol.
    func testPlainClientAgainstATLSListenerPointsAtSecurityProtocol() throws {
        let certificate = try TestCertificate(in: directory)
        let listener = try BinanceStreamServer(plans: [], tls: try certificate.serverConfiguration())
        defer { listener.shutdown() }
        let address = "127.0.0.1:\(listener.port)"
        XCTAssertThrowsError(try KafkaProducer(brokers: address, logger: logger, connectTimeoutMs: 10_000)) { error in
            let error = error as? KafkaError
            XCTAssertEqual(error?.code, .brokerUnreachable)
            let message = error?.message ?? ""
            XCTAssertTrue(message.hasPrefix("cannot reach broker \(address) (bootstrap.servers): "), message)
            XCTAssertTrue(message.contains("incorrect security.protocol configuration"), message)
        }
    }

    func testMissingTopicIsNamedAndNotCreated() throws {
        let broker = try EmbeddedBroker(topic: "trades", partitions: 2, logger: logger)
        defer { broker.shutdown() }
        XCTAssertEqual(try KafkaAdmin.requireTopic(brokers: broker.bootstrap, properties: [:], topic: "trades", logger: logger), 2)
        for _ in 0..<2 {
            XCTAssertThrowsError(try KafkaAdmin.requireTopic(brokers: broker.bootstrap, properties: [:], topic: "trade", logger: logger)) { error in
                let error = error as? KafkaError
                XCTAssertEqual(error?.code, .unknownTopic)
                XCTAssertEqual(error?.message, "topic trade does not exist on \(broker.bootstrap) (kafka.topic); check the topic name, or create it with as many partitions as kafka.partitions says")
            }
        }
    }
}
