import ArgumentParser
import Coordinator
import Detection
import Foundation
import Ingest
import Kafka
import Logging
import Protocol
import ServiceLifecycle

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a whole cluster on this machine: embedded broker, coordinator, two workers, simulated market.",
        discussion: """
            The simulated market starts ten minutes in the past and is replayed at full speed until it \
            reaches the present (so the detectors' baselines are warm at once), then trades in real time. \
            Anomalies are printed as the coordinator stores them. Ctrl-C stops everything cleanly.
            """)

    @OptionGroup var config: ConfigOptions
    @Option(name: .long, help: "Workers to start (separate processes).") var workers: Int = 2
    @Option(name: .long, help: "Simulated trades per second.") var rate: Double = 200
    @Option(name: .long, help: "Seed of the simulated market.") var seed: UInt64 = 7
    @Option(name: .long, help: "Directory for the demo's database and worker logs.") var dataDir: String = "data/demo"
    @Option(name: .long, help: "Stop after this long (e.g. 5m); default: until Ctrl-C.") var duration: String?
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        var cluster = try config.load()
        var logger = logging.bootstrap(label: "vigil.demo")
        if logging.logLevel == nil && ProcessInfo.processInfo.environment["VIGIL_LOG_LEVEL"] == nil {
            logger.logLevel = .warning
        }
        try? FileManager.default.removeItem(atPath: dataDir)
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        cluster.databasePath = "\(dataDir)/coordinator.sqlite"

        let broker = try EmbeddedBroker(topic: cluster.kafka.topic, partitions: cluster.kafka.partitions, logger: logger)
        cluster.kafka.brokers = broker.bootstrap

        let running: RunningCoordinator
        do {
            running = try await RunningCoordinator.start(cluster, logger: logger)
        } catch {
            // The configured port is taken (another coordinator?): any free port will do for a demo.
            var fallback = cluster
            fallback.listen = "127.0.0.1:0"
            running = try await RunningCoordinator.start(fallback, logger: logger)
        }
        let address = running.address

        print("""
            Vigil demo
              broker       \(broker.bootstrap)  (kcat -b \(broker.bootstrap) -L)
              coordinator  \(address)
              dashboard    http://\(address)/
              status       vigil status --coordinator \(address)
              data         \(dataDir)/ (database, worker logs)
            \(workers) workers, \(Int(rate)) simulated trades/s over \(cluster.kafka.partitions) partitions; Ctrl-C to stop.

            """)
        flushStandardOutput()

        let workerSet = WorkerProcesses(count: workers, coordinator: address, logDirectory: dataDir, logger: logger)
        let feeder = DemoFeeder(brokers: broker.bootstrap, topic: cluster.kafka.topic, rate: rate, seed: seed, logger: logger)
        let printer = AnomalyPrinter(node: running.node, coordinator: address, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: running.node),
            .init(service: workerSet),
            .init(service: feeder, successTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: printer),
        ]
        if let alerts = running.alerts {
            services.append(.init(service: alerts))
        }
        if let duration {
            services.append(.init(service: StopAfter(duration: .milliseconds(try durationFlag(duration, flag: "--duration"))), successTerminationBehavior: .gracefullyShutdownGroup))
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()

        await running.stop()
        broker.shutdown()
        print("demo stopped; anomalies are in \(cluster.databasePath)")
    }
}

/// Stops the group after a while (`vigil demo --duration`).
struct StopAfter: Service {
    let duration: Duration
    func run() async throws {
        try? await Task.sleep(for: duration)
    }
}

/// Worker child processes of this same executable, stopped with SIGTERM (handoff) on shutdown.
final class WorkerProcesses: Service, @unchecked Sendable {
    private let count: Int
    private let coordinator: String
    private let logDirectory: String
    private let logger: Logger
    private var processes: [Process] = []

    init(count: Int, coordinator: String, logDirectory: String, logger: Logger) {
        self.count = count
        self.coordinator = coordinator
        self.logDirectory = logDirectory
        self.logger = logger
    }

    func run() async throws {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        for index in 1...max(1, count) {
            let process = Process()
            process.executableURL = executable
            process.arguments = ["worker", "--coordinator", coordinator, "--id", "demo-worker-\(index)"]
            let logPath = "\(logDirectory)/worker-\(index).log"
            FileManager.default.createFile(atPath: logPath, contents: nil)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            process.standardOutput = log
            process.standardError = log
            process.standardInput = FileHandle.nullDevice
            try process.run()
            processes.append(process)
            logger.info("worker started", metadata: ["pid": "\(process.processIdentifier)", "log": "\(logPath)"])
        }
        try? await gracefulShutdown()
        for process in processes where process.isRunning {
            kill(process.processIdentifier, SIGTERM)
        }
        let deadline = ContinuousClock.now + .seconds(15)
        for process in processes {
            while process.isRunning && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(50))
            }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }
}

/// Feeds the simulated market into the broker: the first ten minutes of event time as fast as
/// possible (warm baselines), then in step with the wall clock.
struct DemoFeeder: Service {
    let brokers: String
    let topic: String
    let rate: Double
    let seed: UInt64
    let logger: Logger

    func run() async throws {
        var config = SimulatorConfig()
        config.seed = seed
        config.tradesPerSecond = rate
        config.startMs = wallClockMs() - 10 * 60_000
        config.durationMs = 7 * 86_400_000
        config.anomalies.perKind = 1_000  // about one a minute for four days
        config.anomalies.everyMs = 40_000
        config.anomalies.quietMs = 150_000
        var market = try MarketSimulator(config: config)
        let producer = try KafkaProducer(brokers: brokers, logger: logger)
        var record = IngestRecord()
        var produced = 0
        while !Task.isCancelled, !Task.isShuttingDownGracefully, market.next(into: &record) {
            let ahead = record.timeMs - wallClockMs()
            if ahead > 0 {
                producer.poll(timeoutMs: 0)
                try? await Task.sleep(for: .milliseconds(ahead))
            }
            do {
                try record.line.withUnsafeBytes { line in
                    try producer.produce(topic: topic, key: UnsafeRawBufferPointer(rebasing: line[record.keyRange]), value: line)
                }
                produced += 1
            } catch {
                logger.error("demo feed: \(error)")
                try? await Task.sleep(for: .seconds(1))
            }
        }
        _ = try? producer.flush(timeoutMs: 5_000)
        producer.close()
        logger.info("demo feed stopped", metadata: ["produced": "\(produced)"])
    }
}

/// Prints each anomaly as the coordinator first stores it, and a progress line now and then.
struct AnomalyPrinter: Service {
    let node: CoordinatorNode
    let coordinator: String
    let logger: Logger

    func run() async throws {
        let stream = await node.insertedAnomalies()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Repeats inside the cooldown are stored, not alerted: the progress line counts them.
                    for await anomaly in stream where !anomaly.suppressed {
                        print(Self.line(anomaly))
                        flushStandardOutput()
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(15))
                        if Task.isCancelled { break }
                        let response = await node.handle(HTTPRequest(method: "GET", path: RPCPath.status))
                        if let status = try? response.decode(ClusterStatus.self) {
                            print(Self.progress(status))
                            flushStandardOutput()
                        }
                    }
                }
                await group.waitForAll()
            }
        }
    }

    static func line(_ a: Anomaly) -> String {
        let time = isoTime(ms: a.windowEndMs).dropFirst(11).prefix(8)
        let severity = a.severity.rawValue.uppercased().padding(toLength: 8, withPad: " ", startingAt: 0)
        let flag = a.suppressed ? " (suppressed: cooldown)" : ""
        return "\(time)  \(severity) \(a.description)\(flag)"
    }

    static func progress(_ s: ClusterStatus) -> String {
        let consumed = s.partitions.reduce(0) { $0 + $1.consumed }
        let lag = s.partitions.reduce(Int64(0)) { $0 + max(0, $1.lag) }
        let up = s.workers.filter { $0.state == "up" }.count
        let rate = s.workers.reduce(0) { $0 + $1.recordsPerSecond }
        return "-- \(up) workers up, \(consumed) trades processed (\(Int(rate))/s), lag \(lag), \(s.anomalyCount) anomalies stored"
    }
}
