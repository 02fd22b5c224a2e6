import ArgumentParser
import Foundation
import Kafka
import Logging
import ServiceLifecycle

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run the embedded development broker (librdkafka's mock cluster on 127.0.0.1).",
        discussion: """
            Prints `bootstrap=127.0.0.1:PORT` as its first line of stdout and runs until SIGINT/SIGTERM. \
            Any Kafka client (kcat, librdkafka, Java) can use it. It keeps only about 5 MiB per partition and \
            drops older data: for demos and tests, never production.
            """)

    @Option(name: .long, help: "Port to listen on (0: any free port).") var port: Int = 9092
    @Option(name: .long, help: "Partitions of the topic.") var partitions: Int32 = 12
    @Option(name: .long, help: "Topic to create.") var topic: String = "trades"
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap(label: "vigil.broker")
        let broker = try EmbeddedBroker(topic: topic, partitions: partitions, port: port == 0 ? nil : port, logger: logger)
        print("bootstrap=\(broker.bootstrap)")
        flushStandardOutput()
        logger.info("embedded broker up", metadata: ["bootstrap": "\(broker.bootstrap)", "topic": "\(topic)", "partitions": "\(partitions)"])
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: UntilShutdown(), successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        broker.shutdown()
        logger.info("embedded broker stopped")
    }
}

/// A service that does nothing until the group shuts down: keeps in-process components alive.
struct UntilShutdown: Service {
    func run() async throws {
        try? await gracefulShutdown()
    }
}
