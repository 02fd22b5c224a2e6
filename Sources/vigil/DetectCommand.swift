import ArgumentParser
import Detection
import Foundation

struct DetectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Run the detection pipeline offline over a file of trades (backtest).",
        discussion: """
            Places each trade in the partition the producer would (murmur2 of the symbol, as librdkafka's \
            murmur2_random), numbers offsets per partition in file order, and runs exactly the workers' \
            pipeline. For the same file and partition count it gives the same anomalies, ids and values \
            as the cluster (`vigil anomalies --json`). Anomalies go to --out (or stdout) as JSON lines; a \
            summary goes to stderr.
            """)

    @Option(name: .long, help: "JSON-lines file of Binance trades.") var input: String
    @OptionGroup var config: ConfigOptions
    @Option(name: .long, help: "Partitions to place symbols in (default: kafka.partitions from the config).") var partitions: Int32?
    @Option(name: .long, help: "Write anomalies here as JSON lines (default: stdout).") var out: String?

    func run() async throws {
        let cluster = try config.load()
        let partitionCount = partitions ?? cluster.kafka.partitions
        guard partitionCount > 0 else { throw ValidationError("--partitions must be positive") }
        guard let handle = FileHandle(forReadingAtPath: input) else {
            throw CLIError("--input \(input): cannot open for reading")
        }
        defer { try? handle.close() }

        let started = ContinuousClock.now
        let cpuStart = cpuSeconds()
        var runner = OfflineRunner(partitionCount: partitionCount, config: cluster.detection)
        while true {
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            } catch {
                throw CLIError("--input \(input): read failed: \(error.localizedDescription)")
            }
            if chunk.isEmpty { break }
            chunk.withUnsafeBytes { runner.feed($0) }
        }
        let report = runner.finish()
        let elapsed = ContinuousClock.now - started
        let cpu = cpuSeconds() - cpuStart

        let encoder = cliJSONEncoder()
        var text = ""
        for anomaly in report.anomalies {
            text += String(decoding: try encoder.encode(AnomalyRecord(anomaly)), as: UTF8.self)
            text += "\n"
        }
        if let out {
            do {
                try text.write(toFile: out, atomically: true, encoding: .utf8)
            } catch {
                throw CLIError("--out \(out): cannot write: \(error.localizedDescription)")
            }
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }

        let totals = report.totals
        let seconds = elapsed.inSeconds
        let rate = seconds > 0 ? Double(report.records) / seconds : 0
        printError(
            "records=\(report.records) windowed=\(totals.windowed) late=\(totals.late) malformed=\(totals.malformed) "
                + "windows_closed=\(totals.windowsClosed) anomalies=\(report.anomalies.count) partitions=\(partitionCount) "
                + String(format: "seconds=%.3f trades_per_s=%.0f cpu_ns_per_trade=%.0f", seconds, rate, report.records > 0 ? cpu * 1e9 / Double(report.records) : 0))
        for record in report.malformed.prefix(20) {
            printError("malformed: partition \(record.partition) offset \(record.offset): \(record.reason): \(record.excerpt)")
        }
    }
}

func cpuSeconds() -> Double {
    var usage = rusage()
    guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}
