import ArgumentParser
import Detection
import Foundation
import Ingest
import Kafka
import Logging
import ServiceLifecycle

struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Produce trades into Kafka, keyed by symbol (murmur2_random partitioner, lz4).",
        subcommands: [ReplayIngest.self, SimulateIngest.self, BinanceIngest.self])
}

/// Where and how to produce; shared by the ingest subcommands.
struct ProducerOptions: ParsableArguments {
    @Option(name: .long, help: "bootstrap.servers (default: kafka.brokers from cluster.conf).") var brokers: String?
    @Option(name: .long, help: "Topic (default: kafka.topic from cluster.conf).") var topic: String?
    @Option(name: .long, help: "Create the topic with this many partitions when missing, and fail when it has another count.") var partitions: Int32?
    @OptionGroup var config: ConfigOptions
    @OptionGroup var logging: LoggingOptions

    /// Brokers, topic and librdkafka properties after cluster.conf, `VIGIL_*` and the flags.
    func target() throws -> ProducerTarget {
        let cluster = try config.load()
        return ProducerTarget(
            brokers: brokers ?? cluster.kafka.brokers, topic: topic ?? cluster.kafka.topic,
            partitions: partitions, properties: cluster.kafka.properties)
    }

    /// Connects (failing fast with the setting to check when the broker is unreachable, refuses
    /// the credentials or the TLS handshake fails) and checks the topic.
    func producer(logger: Logger) throws -> (KafkaProducer, String) {
        let target = try target()
        do {
            return (try target.connect(logger: logger), target.topic)
        } catch let error as KafkaError {
            throw CLIError(target.explain(error))
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
        let seconds = report.elapsed.inSeconds
        print("produced \(report.produced) records to \(topic) (delivered \(report.delivered), failed \(report.failed), malformed lines skipped \(report.malformed)) in \(String(format: "%.1f", seconds)) s")
        for sample in report.malformedSamples.prefix(10) {
            printError("skipped line \(sample.lineNumber): \(sample.reason): \(sample.excerpt)")
        }
        if report.failed > 0 || report.pending > 0 {
            throw CLIError("\(report.failed) records failed and \(report.pending) were not confirmed: \(report.deliveryError ?? "no delivery report"); check kafka.brokers and the topic")
        }
    }
}

/// Where ingest commands produce to.
struct ProducerTarget: Sendable {
    var brokers: String
    var topic: String
    /// Create the topic with this many partitions when missing; nil: it must exist.
    var partitions: Int32?
    /// `[kafka.properties]`, passed to librdkafka as is (secrets included: never print them).
    var properties: [String: String]

    /// Checks (or creates) the topic, then opens the producer.
    /// - Throws: `KafkaError` naming the cause and the setting to check.
    func connect(logger: Logger) throws -> KafkaProducer {
        if let partitions {
            _ = try KafkaAdmin.ensureTopic(brokers: brokers, properties: properties, topic: topic, partitions: partitions, logger: logger)
        } else {
            _ = try KafkaAdmin.requireTopic(brokers: brokers, properties: properties, topic: topic, logger: logger)
        }
        return try KafkaProducer(brokers: brokers, properties: properties, logger: logger)
    }

    /// The error's one line, with the flag that fixes a missing topic.
    func explain(_ error: KafkaError) -> String {
        error.code == .unknownTopic ? "\(error) (or pass --partitions N to create it)" : "\(error)"
    }
}

struct ReplayIngest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Produce the trades of a file, keyed by symbol: JSON lines, or Binance public-data CSV.",
        discussion: """
            FILE holds one Binance trade JSON object per line, or is a Binance public-data archive \
            (data.binance.vision): `trades` (id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]) or \
            `aggTrades` (agg_trade_id,price,qty,first_trade_id,last_trade_id,time,is_buyer_maker[,is_best_match]), \
            with or without a header, as .csv, .zip (read with `unzip -p`) or .gz (read with `gzip -dc`). \
            CSV rows become the trade JSON the workers parse. Waits for every delivery report and prints how \
            many records it produced. Lines that cannot be used are skipped and reported with their line numbers.
            """)

    @Argument(help: "JSON lines or Binance CSV; .csv, .zip, .gz.") var file: String
    @Option(name: .long, help: "Symbol of a CSV file whose name does not say it (Binance names them BTCUSDT-trades-2024-08-09.zip).") var symbol: String?
    @Option(name: .long, help: "max (as fast as possible), or a factor like 10x to replay the original timing 10 times faster.") var speed: String = "max"
    @OptionGroup var producer: ProducerOptions

    func run() async throws {
        let logger = producer.logging.bootstrap(label: "vigil.ingest")
        let pacing = try parseSpeed(speed)
        var source: ReplaySource
        do {
            source = try ReplaySource(path: file, symbol: symbol)
        } catch {
            throw CLIError("\(error)")
        }
        defer { source.close() }
        let via = source.decompressionCommand.map { " through `\($0)`" } ?? ""
        let symbolNote = source.format == .jsonLines ? "" : " (\(source.symbols.first ?? "?"))"
        printError("replaying \(file): \(source.format)\(symbolNote)\(via)")
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

struct BinanceIngest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "binance",
        abstract: "Produce Binance's live trades (WebSocket trade streams) into Kafka until stopped.",
        discussion: """
            Subscribes to SYMBOL@trade for each symbol on the combined stream (URL/stream?streams=...) and \
            produces each trade's JSON keyed by its symbol. Reconnects with exponential backoff and jitter \
            on errors and when Binance closes the connection (every 24 hours), answers pings, and reports \
            every gap in trade ids after a reconnect: those trades were missed and are not in Kafka. An \
            unreachable broker is retried with backoff too. SIGINT/SIGTERM stop it: the producer is flushed \
            and a summary printed.
            """)

    @Option(name: .long, help: "Comma-separated symbols, e.g. btcusdt,ethusdt.") var symbols: String
    @Option(name: .long, help: "WebSocket base URL (wss:// with TLS, ws:// plain).") var url: String = BinanceFeedConfig.defaultURL
    @OptionGroup var producer: ProducerOptions

    func run() async throws {
        let logger = producer.logging.bootstrap(label: "vigil.ingest")
        let config: BinanceFeedConfig
        do {
            config = try BinanceFeedConfig(url: url, symbols: symbols.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        } catch {
            throw ValidationError(error.message)
        }
        let service = BinanceIngestService(config: config, target: try producer.target(), logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                                 failureTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}

/// The feed as a service: connects to Kafka (retrying), runs the feed until shutdown, then
/// flushes and prints what happened.
private struct BinanceIngestService: Service {
    let config: BinanceFeedConfig
    let target: ProducerTarget
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            guard let producer = try await connect() else { return }
            defer { producer.close() }
            let feed = BinanceFeed(config: config, logger: logger)
            let report = try await feed.run(into: KafkaSink(producer: producer, topic: target.topic)) { event in
                switch event {
                case .gap(let gap):
                    printError("warning: gap: \(gap); those trades are not in \(target.topic)")
                case .connectFailed(let error, let attempt, let retryIn):
                    printError("binance: attempt \(attempt): \(error); retrying in \(seconds(retryIn))")
                case .disconnected(let connection, let reason, _, let retryIn?):
                    printError("binance: connection \(connection) lost: \(reason); reconnecting in \(seconds(retryIn))")
                case .connected, .disconnected:
                    break
                }
            }
            let symbols = config.symbols.map { "\($0)=\(report.perSymbol[$0] ?? 0)" }.joined(separator: " ")
            print("""
                produced \(report.produced) trades (\(symbols)) to \(target.topic) over \(report.connections) connections; \
                \(report.gapCount) gaps (\(report.missedTrades) trades missed), \(report.duplicatesDropped) duplicates dropped, \
                \(report.nonTradeFrames + report.malformedFrames) frames skipped; delivered \(report.delivery.delivered), \
                failed \(report.delivery.failed), unconfirmed \(report.delivery.pending)
                """)
            if report.delivery.failed > 0 || report.delivery.pending > 0 {
                throw CLIError("\(report.delivery.failed) trades failed and \(report.delivery.pending) were not confirmed: \(report.delivery.error ?? "no delivery report"); check kafka.brokers and the topic")
            }
        }
    }

    /// The producer, retried with backoff while the cluster cannot be used (a long-running
    /// command outlives a broker restart); nil when stopped meanwhile. Settings that waiting
    /// cannot fix end the command.
    private func connect() async throws -> KafkaProducer? {
        var backoff = ReconnectBackoff(initial: .seconds(1), maximum: .seconds(60))
        var random = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            do {
                return try target.connect(logger: logger)
            } catch let error as KafkaError where error.code == .invalidConfiguration || error.code == .partitionCountMismatch {
                throw CLIError(target.explain(error))
            } catch let error as KafkaError {
                let delay = backoff.nextDelay(using: &random)
                printError("kafka: \(target.explain(error)); retrying in \(seconds(delay))")
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    return nil
                }
            }
        }
        return nil
    }
}

/// "1.3 s".
private func seconds(_ duration: Duration) -> String {
    String(format: "%.1f s", duration.inSeconds)
}
