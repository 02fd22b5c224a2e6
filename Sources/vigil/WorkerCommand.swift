import ArgumentParser
import Foundation
import Logging
import Protocol
import ServiceLifecycle
import Worker

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker: it registers with the coordinator, gets its settings and partitions from it, and processes them.",
        discussion: """
            SIGTERM or Ctrl-C hands its partitions off (final checkpoint, release) before it exits. \
            [security] of cluster.conf (--config, default ./cluster.conf when present) sets TLS and the cluster token; \
            a worker the coordinator refuses (no or wrong token) exits with an error.
            """)

    @Option(name: .long, help: "Coordinator address HOST:PORT (also VIGIL_COORDINATOR).")
    var coordinator: String?

    @Option(name: .long, help: "Worker id (default: HOST-PID-RANDOM). Re-using an id after a restart resumes its identity.")
    var id: String?

    @Option(name: .long, help: "Address shown to operators for this worker (default: the host name).")
    var advertise: String?

    @Option(name: .long, help: "Where to serve Prometheus /metrics, HOST:PORT (port 0: any free port; \"off\": none). Printed in the log and shown by `vigil status`.")
    var metricsListen: String = "127.0.0.1:0"

    @OptionGroup var config: ConfigOptions
    @OptionGroup var security: SecurityOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        guard let address = coordinator ?? ProcessInfo.processInfo.environment["VIGIL_COORDINATOR"] else {
            throw ValidationError("--coordinator HOST:PORT is required (or set VIGIL_COORDINATOR)")
        }
        _ = try splitHostPort(address, flag: "--coordinator")
        // Only [security] is read here: every other setting comes from the coordinator.
        let connection = try security.client(config.load().security, role: .worker)
        let logger = logging.bootstrap(label: "vigil.worker")
        var options = WorkerNode.Options(coordinator: address, workerID: id, advertisedAddress: advertise)
        options.tls = connection.tls
        options.token = connection.token
        var metricsServer: WorkerMetricsServer?
        if metricsListen != "off" {
            let (host, port) = try splitHostPort(metricsListen, flag: "--metrics-listen")
            var metricsLogger = logger
            metricsLogger[metadataKey: "worker.id"] = "\(options.workerID)"
            let metrics = WorkerMetrics(logger: metricsLogger)
            metrics.bootstrapSwiftMetrics()
            let server = WorkerMetricsServer(metrics: metrics, host: host, port: port, advertisedHost: options.advertisedAddress, logger: metricsLogger)
            do {
                options.metricsAddress = try await server.start()
            } catch {
                throw CLIError("--metrics-listen: cannot listen on \(metricsListen): \(error)")
            }
            options.metrics = metrics
            metricsServer = server
            metricsLogger.info("metrics listening", metadata: ["url": "http://\(options.metricsAddress ?? metricsListen)\(RPCPath.metrics)"])
        }
        let node = try WorkerNode(options: options, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: node, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            await metricsServer?.shutdown()
            throw error
        }
        await metricsServer?.shutdown()
    }
}
