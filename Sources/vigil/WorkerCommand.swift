import ArgumentParser
import Foundation
import ServiceLifecycle
import Worker

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker: it registers with the coordinator, gets its settings and partitions from it, and processes them.",
        discussion: "SIGTERM or Ctrl-C hands its partitions off (final checkpoint, release) before it exits.")

    @Option(name: .long, help: "Coordinator address HOST:PORT (also VIGIL_COORDINATOR).")
    var coordinator: String?

    @Option(name: .long, help: "Worker id (default: HOST-PID-RANDOM). Re-using an id after a restart resumes its identity.")
    var id: String?

    @Option(name: .long, help: "Address shown to operators for this worker (default: the host name).")
    var advertise: String?

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        guard let address = coordinator ?? ProcessInfo.processInfo.environment["VIGIL_COORDINATOR"] else {
            throw ValidationError("--coordinator HOST:PORT is required (or set VIGIL_COORDINATOR)")
        }
        _ = try splitHostPort(address, flag: "--coordinator")
        let logger = logging.bootstrap(label: "vigil.worker")
        let node = try WorkerNode(options: .init(coordinator: address, workerID: id, advertisedAddress: advertise), logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: node, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}
