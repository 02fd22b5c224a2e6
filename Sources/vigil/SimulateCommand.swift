import ArgumentParser
import Detection
import Foundation
import Ingest

/// Simulator settings shared by `vigil simulate` (files) and `vigil ingest simulate` (Kafka).
struct SimulatorOptions: ParsableArguments {
    @Option(name: .long, help: "Comma-separated symbols (default: BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT,XRPUSDT). Unknown ones get a generic profile.")
    var symbols: String?
    @Option(name: .long, help: "Average trades per second of event time, over all symbols.") var rate: Double = 50
    @Option(name: .long, help: "Event-time length, e.g. 30m, 2h (or milliseconds).") var duration: String = "1h"
    @Option(name: .long, help: "Seed: the same seed gives the same market, byte for byte.") var seed: UInt64 = 1
    @Option(name: .long, help: "Event time of the first trade, ms since the Unix epoch (default 2024-08-09T00:00Z).") var startMs: Int64?
    @Option(name: .long, help: "Injected anomalies of each kind (0: a clean market).") var anomalies: Int = 1
    @Option(name: .long, help: "Spacing of injected anomalies, e.g. 3m.") var every: String = "3m"
    @Option(name: .long, help: "Event time before the first anomaly, e.g. 6m.") var warmup: String = "6m"

    func simulatorConfig() throws -> SimulatorConfig {
        var config = SimulatorConfig()
        config.seed = seed
        config.tradesPerSecond = rate
        config.durationMs = try durationFlag(duration, flag: "--duration")
        if let startMs { config.startMs = startMs }
        config.anomalies.perKind = anomalies
        config.anomalies.everyMs = try durationFlag(every, flag: "--every")
        config.anomalies.warmupMs = try durationFlag(warmup, flag: "--warmup")
        if let symbols {
            let names = symbols.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).uppercased() }.filter { !$0.isEmpty }
            config.symbols = names.map { name in
                SymbolProfile.defaults.first { $0.symbol == name }
                    ?? SymbolProfile(symbol: name, basePrice: 100, priceDecimals: 3, quantityDecimals: 3,
                                     annualVolatility: 0.7, activity: 0.1, medianQuantity: 1.5)
            }
        }
        do {
            try config.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        return config
    }
}

func durationFlag(_ text: String, flag: String) throws -> Int64 {
    guard let ms = ClusterConfigLoader.parseDuration(text) else {
        throw ValidationError("\(flag): expected a duration like 500ms, 6s, 2m, 1h, 1d (or milliseconds), got \"\(text)\"")
    }
    return ms
}

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Write a simulated market (with labelled injected anomalies) to files, without a broker.")

    @Option(name: .long, help: "Trades file to write (JSON lines, Binance trade-stream form).") var out: String
    @Option(name: .long, help: "Labels file to write: one {symbol, kind, start_ms, end_ms} per injected anomaly.") var labels: String?
    @OptionGroup var simulator: SimulatorOptions

    func run() async throws {
        var market: MarketSimulator
        do {
            market = try MarketSimulator(config: try simulator.simulatorConfig())
        } catch let error as IngestError {
            throw CLIError("\(error)")
        }
        let summary: SimulationFileSummary
        do {
            summary = try market.writeFiles(tradesPath: out, labelsPath: labels)
        } catch {
            throw CLIError("\(error)")
        }
        print("wrote \(summary.trades) trades to \(out)" + (labels.map { " and \(summary.labels) labels to \($0)" } ?? ""))
    }
}
