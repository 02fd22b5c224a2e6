import ArgumentParser

@main
struct Vigil: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vigil",
        abstract: "Real-time anomaly detection for crypto markets, on a cluster of Swift workers.",
        discussion: """
            Start here: `vigil demo` runs an embedded broker, a coordinator, two workers and a simulated \
            market on this machine. See README.md for a cluster across hosts.
            """,
        subcommands: [
            DemoCommand.self,
            BrokerCommand.self,
            CoordinatorCommand.self,
            WorkerCommand.self,
            IngestCommand.self,
            SimulateCommand.self,
            StatusCommand.self,
            AnomaliesCommand.self,
            AckCommand.self,
            DetectCommand.self,
            EvaluateCommand.self,
            BenchCommand.self,
        ]
    )
}
