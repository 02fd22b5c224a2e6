import ArgumentParser
import Detection
import Foundation
import Ingest
import Kafka
import Logging

struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Produce trades into Kafka, keyed by symbol (murmur2_random partitioner, lz4).",
        subcommands: [ReplayIngest.self, SimulateIngest.self])
}

/// Where and how to produce; shared by the ingest subcommands.
struct ProducerOptions: ParsableArguments {
    @Option(name: .long, help: "bootstrap.servers (default: kafka.brokers from cluster.conf).") var brokers: String?
    @Option(name: .long, help: "Topic (default: kafka.topic from cluster.conf).") var topic: String?
    @Option(name: .long, help: "Create the topic with this many partitions when missing, and fail when it has another count.") var partitions: Int32?
    @OptionGroup var config: ConfigOptions
    @OptionGroup var logging: LoggingOptions

    /// Connects (failing fast with the setting to check when the broker is unreachable) and
    /// checks the topic.
    func producer(logger: Logger) throws -> (KafkaProducer, String) {
        let cluster = try config.load()
        let brokers = self.brokers ?? cluster.kafka.brokers
        let topic = self.topic ?? cluster.kafka.topic
        do {
            if let partitions {
                _ = try KafkaAdmin.ensureTopic(brokers: brokers, properties: cluster.kafka.properties, topic: topic, partitions: partitions, logger: logger)
            }
            return (try KafkaProducer(brokers: brokers, properties: cluster.kafka.properties, logger: logger), topic)
        } catch let error as KafkaError {
            throw CLIError("\(error)")
        }
    }

    func run<Source: TradeSource>(_ source: inout Source, pacing: Pacing, logger: Logger, labelsPath: String? = nil) async throws {
        let (producer, topic) = try producer(logger: logger)
        defer { producer.close() }
        let labels = try labelsPath.map { path -> FileHandle in
            guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                throw CLIError("--labels \(path): cannot create the file")
            }
            return handle
        }
        defer { try? labels?.close() }
        let ingestor = Ingestor(pacing: pacing, logger: logger)
        let report = try await ingestor.run(&source, into: KafkaSink(producer: producer, topic: topic)) { label in
            labels?.write(Data((label.jsonLine + "\n").utf8))
        }
        let seconds = Double(report.elapsed.components.seconds) + Double(report.elapsed.components.attoseconds) / 1e18
        print("produced \(report.produced) records to \(topic) (delivered \(report.delivered), failed \(report.failed), malformed lines skipped \(report.malformed)) in \(String(format: "%.1f", seconds)) s")
        for sample in report.malformedSamples.prefix(10) {
            printError("skipped line \(sample.lineNumber): \(sample.reason): \(sample.excerpt)")
        }
        if report.failed > 0 || report.pending > 0 {
            throw CLIError("\(report.failed) records failed and \(report.pending) were not confirmed: \(report.deliveryError ?? "no delivery report"); check kafka.brokers and the topic")
        }
    }
}

struct ReplayIngest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Produce each line of a JSON-lines file of Binance trades, keyed by its symbol.",
        discussion: "Waits for every delivery report and prints how many records it produced. Lines without a symbol are skipped and reported with their line numbers.")

    @Argument(help: "JSON-lines file, one Binance trade per line.") var file: String
    @Option(name: .long, help: "max (as fast as possible), or a factor like 10x to replay the original timing 10 times faster.") var speed: String = "max"
    @OptionGroup var producer: ProducerOptions

    func run() async throws {
        let logger = producer.logging.bootstrap(label: "vigil.ingest")
        let pacing = try parseSpeed(speed)
        var source: ReplaySource
        do {
            source = try ReplaySource(path: file)
        } catch {
            throw CLIError("\(error)")
        }
        defer { source.close() }
        try await producer.run(&source, pacing: pacing, logger: logger)
    }
}

struct SimulateIngest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Produce a simulated market with injected anomalies (deterministic for a seed).")

    @OptionGroup var simulator: SimulatorOptions
    @Option(name: .long, help: "max, or a factor like 1x (real time) or 10x.") var speed: String = "1x"
    @Option(name: .long, help: "Write a label per injected anomaly here (JSON lines).") var labels: String?
    @OptionGroup var producer: ProducerOptions

    func run() async throws {
        let logger = producer.logging.bootstrap(label: "vigil.ingest")
        var config = try simulator.simulatorConfig()
        if simulator.startMs == nil && speed != "max" {
            config.startMs = wallClockMs()  // real-time runs trade "now"
        }
        var market: MarketSimulator
        do {
            market = try MarketSimulator(config: config)
        } catch {
            throw CLIError("\(error)")
        }
        try await producer.run(&market, pacing: try parseSpeed(speed), logger: logger, labelsPath: labels)
    }
}

func parseSpeed(_ text: String) throws -> Pacing {
    if text == "max" { return .max }
    let number = text.hasSuffix("x") ? String(text.dropLast()) : text
    guard let factor = Double(number), factor > 0, factor.isFinite else {
        throw ValidationError("--speed: expected max or a positive factor like 10x, got \"\(text)\"")
    }
    return .scaled(factor)
}
