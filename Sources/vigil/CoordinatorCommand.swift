import ArgumentParser
import Coordinator
import Foundation
import Logging
import Protocol
import ServiceLifecycle
import Synchronization

struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator: membership, partition assignment, checkpoints, anomaly store, HTTP API.",
        discussion: "Prints `coordinator=HOST:PORT` as its first line of stdout once it listens.")

    @OptionGroup var config: ConfigOptions
    @Option(name: .long, help: "Listen address HOST:PORT (overrides coordinator.listen).") var listen: String?
    @Option(name: .long, help: "SQLite database path (overrides coordinator.database).") var database: String?
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        var cluster = try config.load()
        if let listen { cluster.listen = listen }
        if let database { cluster.databasePath = database }
        let logger = logging.bootstrap(label: "vigil.coordinator")
        let running = try await RunningCoordinator.start(cluster, logger: logger)
        print("coordinator=\(running.address)")
        flushStandardOutput()
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: running.node, successTerminationBehavior: .gracefullyShutdownGroup),
        ]
        if let alerts = running.alerts {
            services.append(.init(service: alerts))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        await running.stop()
    }
}

/// A coordinator node with its HTTP server bound, as `vigil coordinator` and `vigil demo` run it.
struct RunningCoordinator {
    let node: CoordinatorNode
    let server: HTTPServer
    let store: CoordinatorStore
    /// The address it listens on, with the real port when 0 was asked for.
    let address: String
    /// Delivers alerts (a service to run beside the node); nil when `[alerts] webhook_url` is empty.
    let alerts: AlertDispatcher?

    static func start(_ cluster: ClusterConfig, logger: Logger) async throws -> RunningCoordinator {
        let (host, port) = try splitHostPort(cluster.listen, flag: "coordinator.listen")
        let directory = URL(fileURLWithPath: cluster.databasePath).deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw CLIError("coordinator.database: cannot create directory \(directory.path): \(error.localizedDescription)")
        }
        let store: CoordinatorStore
        do {
            store = try CoordinatorStore(path: cluster.databasePath)
        } catch {
            throw CLIError("coordinator.database: cannot open \(cluster.databasePath): \(error)")
        }
        // The server must be bound before the node knows its address (port 0 picks one), and the
        // node must exist before requests arrive: requests wait for it behind a late-bound handler.
        // Tokens are checked in front of it (docs/security.md).
        let security = try CoordinatorSecurity.load(cluster.security, host: host, logger: logger)
        let metrics = CoordinatorMetrics()
        let rejections = RejectionCounters(registry: metrics.registry)
        let handler = LateBoundHandler()
        let gate = AccessGate(policy: security.policy, handler: handler, rejections: rejections, logger: logger)
        let server = HTTPServer(host: host, port: port, handler: gate, tls: security.tls, rejections: rejections, logger: logger)
        let boundPort: Int
        do {
            boundPort = try await server.start()
        } catch {
            throw CLIError("coordinator.listen: cannot listen on \(cluster.listen): \(error)")
        }
        let address = "\(host):\(boundPort)"
        let retention = RetentionPolicy(windowsMs: cluster.retentionWindowsMs, anomaliesMs: cluster.retentionAnomaliesMs)
        let alertPolicy = cluster.alertWebhookURL.isEmpty ? nil : AlertPolicy(
            webhookURL: cluster.alertWebhookURL, minSeverity: cluster.alertMinSeverity,
            dashboardURL: cluster.alertDashboardURL.isEmpty ? nil : cluster.alertDashboardURL)
        metrics.bootstrapSwiftMetrics()
        let node = try CoordinatorNode(
            config: CoordinatorConfig(
                databasePath: cluster.databasePath, listenAddress: address, settings: cluster.workerSettings, retention: retention,
                alerts: alertPolicy),
            store: store, logger: logger, metrics: metrics)
        handler.bind(node)
        let alerts = alertPolicy.map {
            AlertDispatcher(policy: $0, store: store, clusterName: cluster.clusterName, metrics: metrics, keepMs: retention.anomaliesMs, logger: logger)
        }
        logger.info("coordinator listening", metadata: [
            "address": "\(address)", "database": "\(cluster.databasePath)", "cluster": "\(cluster.clusterName)",
            "dashboard": "\(security.tls == nil ? "http" : "https")://\(address)/", "metrics": "\(security.tls == nil ? "http" : "https")://\(address)\(RPCPath.metrics)",
            "alerts": "\(alertPolicy.map { "\($0.minSeverity.rawValue) and above" } ?? "off (alerts.webhook_url is empty)")",
        ])
        return RunningCoordinator(node: node, server: server, store: store, address: address, alerts: alerts)
    }

    func stop() async {
        await server.shutdown()
        try? store.close()
    }
}

/// Answers 503 until the real handler is bound.
final class LateBoundHandler: HTTPHandler {
    private let target = Mutex<(any HTTPHandler)?>(nil)

    func bind(_ handler: any HTTPHandler) {
        target.withLock { $0 = handler }
    }

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        guard let handler = target.withLock({ $0 }) else {
            return .text("coordinator starting\n", status: 503)
        }
        return await handler.handle(request)
    }
}
