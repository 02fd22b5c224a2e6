import CRdKafka
import Logging
import NIOCore
import Synchronization

/// A Kafka broker inside this process: librdkafka's mock cluster (one broker) on 127.0.0.1.
///
/// It speaks the real Kafka protocol, so `kcat -b <bootstrap> -L`, other processes and every
/// Kafka client can use it. It is for demos, tests and dev clusters, never production:
/// - Data lives in memory and is gone when the broker stops.
/// - Each partition keeps only about 5 MiB (hard-coded in librdkafka 2.0.2) and silently drops
///   older record batches; a consumer asking for a dropped offset is moved to the new log start
///   (`KafkaConsumer` reports that as `.offsetsLost`). Size data to fit, compress (lz4), spread keys.
/// - Any metadata request naming an unknown topic auto-creates it with 4 partitions; create
///   topics here first (`init(topic:...)`, `createTopic`). CreateTopics (KafkaAdmin) is not supported.
/// - Loopback only: the broker advertises 127.0.0.1:<its own port>.
///
/// With a fixed `port`, the broker listens on its ephemeral port and a forwarder listens on
/// 127.0.0.1:`port` and relays bootstrap connections to it; `bootstrap` is then
/// "127.0.0.1:`port`" while the metadata still advertises `advertisedAddress`.
///
/// Shut down every client (producers, consumers) before `shutdown()`, or the clients log that
/// all brokers are down. `shutdown()` is idempotent and also runs on deinit.
public final class EmbeddedBroker: Sendable {
    /// The address clients should bootstrap from: "127.0.0.1:PORT".
    public let bootstrap: String
    /// The address the broker advertises in metadata (its own ephemeral port).
    public let advertisedAddress: String

    private let handle: KafkaHandle
    private let cluster: MockCluster
    private let forwarder: LoopbackForwarder?
    private let isShutDown = Atomic<Bool>(false)
    private let logger: Logger

    /// Starts the broker and creates `topic` with `partitions` partitions.
    /// - Parameter port: a fixed port for `bootstrap` (via a loopback forwarder); nil: the broker's own ephemeral port.
    /// - Throws: `KafkaError` `.embeddedBroker` if the mock cluster cannot start or the topic is
    ///   invalid, `.listenFailed` if `port` is taken.
    public init(topic: String, partitions: Int32, port: Int? = nil, logger: Logger) throws {
        self.logger = logger
        let context = KafkaClientContext(logger: logger, role: "embedded-broker", collectsErrors: false)
        // The mock cluster needs a client handle for its bookkeeping; this one never connects.
        handle = try KafkaHandle(type: RD_KAFKA_PRODUCER, brokers: nil, defaults: [], properties: [:], context: context)
        guard let mc = rd_kafka_mock_cluster_new(handle.pointer, 1) else {
            handle.destroy()
            throw KafkaError(.embeddedBroker, "cannot start librdkafka's mock cluster (see the log for the cause)")
        }
        cluster = MockCluster(pointer: mc)
        advertisedAddress = String(cString: rd_kafka_mock_cluster_bootstraps(mc))

        if let port {
            do {
                let target = try Self.socketAddress(advertisedAddress)
                forwarder = try LoopbackForwarder(port: port, target: target, logger: logger)
            } catch {
                rd_kafka_mock_cluster_destroy(mc)
                handle.destroy()
                throw error
            }
            bootstrap = "127.0.0.1:\(forwarder!.port)"
        } else {
            forwarder = nil
            bootstrap = advertisedAddress
        }

        do {
            try createTopic(topic, partitions: partitions)
        } catch {
            shutdown()
            throw error
        }
        logger.info("embedded kafka broker started", metadata: [
            "bootstrap": "\(bootstrap)", "advertised": "\(advertisedAddress)", "topic": "\(topic)", "partitions": "\(partitions)",
        ])
    }

    deinit { shutdown() }

    /// Creates another topic.
    /// - Throws: `KafkaError` `.embeddedBroker` if it exists already or `partitions` < 1.
    public func createTopic(_ name: String, partitions: Int32) throws {
        guard !isShutDown.load(ordering: .acquiring) else {
            throw KafkaError(.closed, "createTopic on a stopped EmbeddedBroker", topic: name)
        }
        guard partitions > 0, !name.isEmpty else {
            throw KafkaError(.embeddedBroker, "cannot create topic '\(name)' with \(partitions) partitions: the name must not be empty and partitions must be >= 1", topic: name)
        }
        let err = rd_kafka_mock_topic_create(cluster.pointer, name, partitions, 1)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.rdkafka(.embeddedBroker, err, "cannot create topic \(name) with \(partitions) partitions on the embedded broker", topic: name)
        }
    }

    /// Makes the broker unreachable (closes its connections and refuses new ones) or reachable
    /// again, keeping its data: failure injection for tests. Clients reconnect by themselves.
    public func setReachable(_ reachable: Bool) throws {
        guard !isShutDown.load(ordering: .acquiring) else { throw KafkaError(.closed, "setReachable on a stopped EmbeddedBroker") }
        let err = reachable ? rd_kafka_mock_broker_set_up(cluster.pointer, 1) : rd_kafka_mock_broker_set_down(cluster.pointer, 1)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.rdkafka(.embeddedBroker, err, "cannot set the embedded broker \(reachable ? "up" : "down")")
        }
    }

    /// Stops the forwarder and the broker; all data is lost. Idempotent.
    public func shutdown() {
        guard isShutDown.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        forwarder?.shutdown()
        rd_kafka_mock_cluster_destroy(cluster.pointer)
        handle.destroy()
        logger.info("embedded kafka broker stopped", metadata: ["bootstrap": "\(bootstrap)"])
    }

    private static func socketAddress(_ hostPort: String) throws -> SocketAddress {
        // The mock reports "127.0.0.1:PORT" (one broker, so no comma).
        guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]) else {
            throw KafkaError(.embeddedBroker, "unexpected mock broker address '\(hostPort)'")
        }
        return try SocketAddress(ipAddress: String(hostPort[..<colon]), port: port)
    }
}

/// The mock cluster pointer, owned by one `EmbeddedBroker`.
private struct MockCluster: @unchecked Sendable {  // the mock cluster API is thread-safe (ops go to its own thread)
    let pointer: OpaquePointer
}
