import Detection
import Foundation
import Kafka
import XCTest

/// The `vigil ingest` command lines as an operator runs them: a real `vigil` process against
/// the embedded broker, a local feed server, or a broker that requires SASL.
final class IngestCommandTests: IngestTestCase {
    /// A Binance zip archive replayed by `vigil ingest replay` lands on the topic.
    func testReplayOfABinanceZipArchive() async throws {
        let lines = Array(try RealTrades.spotLines().filter { $0.contains(#""s":"ETHUSDT""#) }.prefix(400))
        let archive = BinanceArchive(directory: directory)
        let trades = try lines.map { try TradeParser.parse($0) }
        let path = try archive.write(archive.tradesRows(trades, lines: lines, bestMatch: true), as: "ETHUSDT-trades-2024-08-09.zip")
        let broker = try EmbeddedBroker(topic: "trades", partitions: 3, logger: logger)
        defer { broker.shutdown() }

        let run = try runVigil(["ingest", "replay", path, "--brokers", broker.bootstrap, "--topic", "trades"])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.stderr.contains("replaying \(path): Binance trades CSV (ETHUSDT) through `unzip -p "), run.stderr)
        XCTAssertTrue(run.stdout.contains("produced 400 records to trades (delivered 400, failed 0, malformed lines skipped 0)"), run.stdout)
        let records = try await readTopic("trades", partitions: 3, brokers: broker.bootstrap, count: 400)
        XCTAssertEqual(Set(records.map(\.key)), ["ETHUSDT"])
        XCTAssertEqual(records.map { try? TradeParser.parse($0.value).tradeID }, trades.map(\.tradeID))
    }

    /// SASL settings from the environment only (`VIGIL_KAFKA_SASL_PASSWORD`...) reach the
    /// broker; a refused login exits non-zero with one line naming the settings, never the password.
    func testSASLCredentialsFromTheEnvironmentAndAClearRefusal() throws {
        let broker = try FakeSASLBroker()
        defer { broker.shutdown() }
        let password = "env-Secret-42"
        let file = directory.appendingPathComponent("t.jsonl").path
        try Data((try RealTrades.spotLines().prefix(3).joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: file))

        let run = try runVigil(["ingest", "replay", file, "--brokers", broker.bootstrap, "--topic", "trades"], environment: [
            "VIGIL_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "VIGIL_KAFKA_SASL_MECHANISM": "PLAIN",
            "VIGIL_KAFKA_SASL_USERNAME": "team-a", "VIGIL_KAFKA_SASL_PASSWORD": password, "VIGIL_LOG_LEVEL": "trace",
        ])
        XCTAssertNotEqual(run.status, 0, run.output)
        let errorLines = run.stderr.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
        XCTAssertEqual(errorLines.count, 1, run.stderr)
        XCTAssertTrue(errorLines.first?.contains("authentication with broker \(broker.bootstrap) (bootstrap.servers) failed") ?? false, run.stderr)
        XCTAssertTrue(errorLines.first?.contains("sasl.username and sasl.password") ?? false, run.stderr)
        XCTAssertFalse(run.output.contains(password), "the password appears nowhere in the output")
        XCTAssertTrue(broker.receivedPlainPayloads.contains(Array("\0team-a\0\(password)".utf8)), "VIGIL_KAFKA_SASL_PASSWORD reached librdkafka")
    }

    /// A missing topic is an error that says how to create it, and nothing is produced.
    func testMissingTopicExitsNonZeroSayingHowToCreateIt() throws {
        let broker = try EmbeddedBroker(topic: "trades", partitions: 2, logger: logger)
        defer { broker.shutdown() }
        let file = directory.appendingPathComponent("t.jsonl").path
        try Data((try RealTrades.spotLines().prefix(3).joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: file))
        let run = try runVigil(["ingest", "replay", file, "--brokers", broker.bootstrap, "--topic", "trade"])
        XCTAssertNotEqual(run.status, 0, run.output)
        XCTAssertTrue(run.stderr.contains("Error: topic trade does not exist on \(broker.bootstrap) (kafka.topic)"), run.stderr)
        XCTAssertTrue(run.stderr.contains("(or pass --partitions N to create it)"), run.stderr)
    }

    /// `vigil ingest binance` against a local server: trades reach the topic, the gap after the
    /// drop is printed as a warning, and SIGINT stops it with a summary and exit status 0.
    func testBinanceCommandProducesWarnsOfGapsAndStopsOnSIGINT() async throws {
        let lines = Array(try RealTrades.spotLines().prefix(3_000))
        let server = try BinanceStreamServer(plans: [
            .init(lines: Array(lines[..<1_000]), ending: .drop),
            .init(lines: Array(lines[1_004...]), ending: .stayOpen),
        ])
        defer { server.shutdown() }
        let broker = try EmbeddedBroker(topic: "trades", partitions: 4, logger: logger)
        defer { broker.shutdown() }

        let process = try startVigil([
            "ingest", "binance", "--symbols", "btcusdt,ethusdt", "--url", server.url(tls: false),
            "--brokers", broker.bootstrap, "--topic", "trades",
        ])
        defer { if process.process.isRunning { process.process.terminate() } }
        let records = try await readTopic("trades", partitions: 4, brokers: broker.bootstrap, count: lines.count - 4)
        XCTAssertEqual(records.count, lines.count - 4)
        kill(process.process.processIdentifier, SIGINT)
        let status = await process.wait(timeout: .seconds(30))
        XCTAssertEqual(status, 0, process.output)
        XCTAssertTrue(process.stderr.contains("warning: gap: "), process.stderr)
        XCTAssertTrue(process.stderr.contains("never received across the reconnect (connection 2); those trades are not in trades"), process.stderr)
        XCTAssertTrue(process.stderr.contains("binance: connection 1 lost: "), process.stderr)
        XCTAssertTrue(process.stdout.contains("produced \(lines.count - 4) trades ("), process.stdout)
        XCTAssertTrue(process.stdout.contains("over 2 connections; "), process.stdout)
        XCTAssertTrue(process.stdout.contains("(4 trades missed)"), process.stdout)
        XCTAssertTrue(process.stdout.contains("delivered \(lines.count - 4), failed 0, unconfirmed 0"), process.stdout)
    }

    /// The long-running feed outlives an unreachable broker: it says why and retries with
    /// backoff, and still stops cleanly on SIGINT.
    func testBinanceCommandRetriesAnUnreachableBroker() async throws {
        let brokers = "127.0.0.1:\(try unusedLoopbackPort())"
        let process = try startVigil(["ingest", "binance", "--symbols", "btcusdt", "--url", "ws://127.0.0.1:9", "--brokers", brokers, "--log-level", "error"])
        defer { if process.process.isRunning { process.process.terminate() } }
        let deadline = ContinuousClock.now + .seconds(20)
        let expected = "kafka: cannot reach broker \(brokers) (bootstrap.servers): "
        while process.stderr.components(separatedBy: expected).count < 3, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertGreaterThanOrEqual(process.stderr.components(separatedBy: expected).count - 1, 2, "two attempts reported: \(process.output)")
        XCTAssertTrue(process.stderr.contains("; retrying in "), process.stderr)
        XCTAssertTrue(process.process.isRunning, "a long-running command does not give up")
        kill(process.process.processIdentifier, SIGINT)
        let status = await process.wait(timeout: .seconds(30))
        XCTAssertEqual(status, 0, process.output)
    }

    // MARK: - Running vigil

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        var output: String { "stdout:\n\(stdout)\nstderr:\n\(stderr)" }
    }

    /// A started `vigil` whose output goes to files in the test directory.
    struct Started {
        let process: Process
        let stdoutURL: URL
        let stderrURL: URL

        var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }
        var output: String { "stdout:\n\(stdout)\nstderr:\n\(stderr)" }

        /// Polls for the exit; nil if it is still running after `timeout`.
        func wait(timeout: Duration) async -> Int32? {
            let deadline = ContinuousClock.now + timeout
            while process.isRunning {
                guard ContinuousClock.now < deadline else { return nil }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return process.terminationStatus
        }
    }

    /// Runs `vigil` to completion (at most 60 s) in the test directory, so no ./cluster.conf applies.
    private func runVigil(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
        let started = try startVigil(arguments, environment: environment)
        let deadline = Date().addingTimeInterval(60)
        while started.process.isRunning, Date() < deadline { usleep(20_000) }
        if started.process.isRunning {
            started.process.terminate()
            XCTFail("vigil \(arguments.joined(separator: " ")) did not finish within 60 s")
        }
        started.process.waitUntilExit()
        return Run(status: started.process.terminationStatus, stdout: started.stdout, stderr: started.stderr)
    }

    private func startVigil(_ arguments: [String], environment: [String: String] = [:]) throws -> Started {
        let executable = try Self.vigilPath()
        let name = UUID().uuidString.prefix(8)
        let stdoutURL = directory.appendingPathComponent("vigil-\(name).out")
        let stderrURL = directory.appendingPathComponent("vigil-\(name).err")
        FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VIGIL_") }
        env.merge(environment) { _, new in new }
        process.environment = env
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        try process.run()
        return Started(process: process, stdoutURL: stdoutURL, stderrURL: stderrURL)
    }

    /// The `vigil` executable built beside the test bundle (or `VIGIL_BIN`).
    private static func vigilPath() throws -> String {
        if let path = ProcessInfo.processInfo.environment["VIGIL_BIN"] { return path }
        var url = Bundle.main.bundleURL
        while url.pathComponents.count > 1 {
            let candidate = url.appendingPathComponent("vigil")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
            url.deleteLastPathComponent()
        }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            let candidate = bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("vigil")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
        }
        throw XCTSkip("no vigil executable beside the tests; build it (swift build --build-tests builds it) or set VIGIL_BIN")
    }
}
