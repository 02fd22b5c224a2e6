import Foundation
import Logging
import Protocol
import XCTest

/// Base class for tests that run a real cluster: the embedded broker, a coordinator and worker
/// processes of the `vigil` executable on loopback, talking Kafka and HTTP/2 for real.
class ClusterTestCase: XCTestCase {
    var harness: ProcessHarness!
    var bootstrap = ""
    var coordinatorAddress = ""
    var configPath = ""
    var broker: ProcessHarness.Child!
    var coordinator: ProcessHarness.Child!
    var workers: [ProcessHarness.Child] = []
    /// Extra environment of coordinator processes (e.g. `VIGIL_LOG_LEVEL=debug` to see every stored write).
    var coordinatorEnvironment: [String: String] = [:]
    private var client: RPCClient?

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard FileManager.default.isExecutableFile(atPath: ProcessHarness.vigilPath) else {
            throw XCTSkip("the vigil executable is not built at \(ProcessHarness.vigilPath); run `swift build` first")
        }
        harness = try ProcessHarness(testName: name)
    }

    override func tearDown() {
        let logs = harness?.logs ?? ""
        let client = self.client
        let done = DispatchSemaphore(value: 0)
        Task {
            await client?.close()
            done.signal()
        }
        done.wait()
        harness?.shutdown()
        if let run = testRun, run.failureCount + run.unexpectedExceptionCount > 0 {
            print("---- logs of \(name) (kept in \(harness?.directory.path ?? "?")) ----\n\(logs)")
        } else {
            harness?.removeFiles()
        }
        super.tearDown()
    }

    /// Starts the broker and the coordinator; `extraConfig` is appended to the generated cluster.conf.
    func startBrokerAndCoordinator(partitions: Int = 12, extraConfig: String = "", detection: String = "") throws {
        broker = try harness.start("broker", ["broker", "--port", "0", "--partitions", "\(partitions)", "--topic", "trades"])
        bootstrap = try harness.awaitLine(broker, prefix: "bootstrap=")
        configPath = harness.directory.appendingPathComponent("cluster.conf").path
        let config = """
            [cluster]
            name = "it"
            [coordinator]
            listen = "127.0.0.1:0"
            database = "\(harness.directory.appendingPathComponent("coordinator.sqlite").path)"
            heartbeat_interval = "500ms"
            lease_timeout = "4s"
            checkpoint_interval = "2s"
            \(extraConfig)
            [kafka]
            brokers = "\(bootstrap)"
            topic = "trades"
            partitions = \(partitions)
            [detection]
            policy = "any"
            \(detection)
            """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        try startCoordinator()
    }

    func startCoordinator(listen: String? = nil) throws {
        var args = ["coordinator", "--config", configPath]
        if let listen { args += ["--listen", listen] }
        coordinator = try harness.start("coordinator-\(harness.children.count)", args, environment: coordinatorEnvironment)
        coordinatorAddress = try harness.awaitLine(coordinator, prefix: "coordinator=")
    }

    @discardableResult
    func startWorker(_ id: String) throws -> ProcessHarness.Child {
        let worker = try harness.start("worker-\(id)", ["worker", "--coordinator", coordinatorAddress, "--id", id])
        workers.append(worker)
        return worker
    }

    func rpc() throws -> RPCClient {
        if let client { return client }
        var logger = Logger(label: "it")
        logger.logLevel = .error
        let made = try RPCClient(address: coordinatorAddress, logger: logger)
        client = made
        return made
    }

    func status() async throws -> ClusterStatus {
        try await rpc().get(RPCPath.status)
    }

    func storedAnomalies() async throws -> [StoredAnomaly] {
        try await rpc().get(RPCPath.anomalies, query: ["limit": "1000000"])
    }

    /// Polls the cluster status until `condition` holds.
    func awaitStatus(_ what: String, timeout: Duration, _ condition: (ClusterStatus) -> Bool) async throws -> ClusterStatus {
        let deadline = ContinuousClock.now + timeout
        var last: ClusterStatus?
        while ContinuousClock.now < deadline {
            if let status = try? await status() {
                last = status
                if condition(status) { return status }
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        let summary = last.map { s in
            "workers: \(s.workers.map { "\($0.id)=\($0.state)\($0.partitions)" }); partitions: \(s.partitions.map { "\($0.partition):\($0.owner ?? "-")@\($0.nextOffset)/\($0.logEndOffset) c=\($0.consumed)" }); problems: \(s.problems)"
        } ?? "no status"
        throw HarnessError("timed out after \(timeout) waiting for \(what); last status: \(summary)")
    }

    /// Waits until every partition with data is owned and fully processed (offset == log end)
    /// and `total` records were counted across partitions.
    func awaitFullyProcessed(total: Int64, timeout: Duration = .seconds(180)) async throws -> ClusterStatus {
        try await awaitStatus("all \(total) records processed", timeout: timeout) { s in
            let consumedTotal = s.partitions.reduce(0) { $0 + $1.consumed }
            let caughtUp = s.partitions.allSatisfy { $0.owner != nil && ($0.logEndOffset <= 0 || $0.nextOffset == $0.logEndOffset) }
            return caughtUp && consumedTotal == total
        }
    }

    /// Waits until the stored anomaly count stops changing (reports are asynchronous).
    func awaitStableAnomalies(expected: Int, timeout: Duration = .seconds(60)) async throws -> [StoredAnomaly] {
        let deadline = ContinuousClock.now + timeout
        var stored: [StoredAnomaly] = []
        while ContinuousClock.now < deadline {
            stored = try await storedAnomalies()
            if stored.count >= expected { 
                try await Task.sleep(for: .seconds(1))
                return try await storedAnomalies()
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        return stored
    }

    /// Runs `vigil detect` over `file` with the cluster's config and returns its anomalies by id.
    func offlineAnomalies(_ file: String, partitions: Int = 12) throws -> [String: OfflineAnomaly] {
        let out = harness.directory.appendingPathComponent("expected-\(UUID().uuidString.prefix(6)).jsonl").path
        _ = try harness.run("detect", ["detect", "--input", file, "--config", configPath, "--partitions", "\(partitions)", "--out", out], timeout: .seconds(300))
        let text = try String(contentsOfFile: out, encoding: .utf8)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var byID: [String: OfflineAnomaly] = [:]
        for line in text.split(separator: "\n") where !line.isEmpty {
            let anomaly = try decoder.decode(OfflineAnomaly.self, from: Data(line.utf8))
            byID[anomaly.id] = anomaly
        }
        return byID
    }

    /// Asserts that the stored anomalies are exactly the offline ones: same ids, kinds, windows and values.
    func assertSameAnomalies(_ stored: [StoredAnomaly], _ expected: [String: OfflineAnomaly], file: StaticString = #filePath, line: UInt = #line) {
        let storedByID = Dictionary(stored.map { ($0.anomaly.id, $0.anomaly) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(stored.count, storedByID.count, "duplicate ids stored", file: file, line: line)
        let missing = Set(expected.keys).subtracting(storedByID.keys)
        let extra = Set(storedByID.keys).subtracting(expected.keys)
        XCTAssertTrue(missing.isEmpty, "anomalies of `vigil detect` missing from the cluster: \(missing.sorted().prefix(10)) of \(missing.count)", file: file, line: line)
        XCTAssertTrue(extra.isEmpty, "anomalies the cluster stored that `vigil detect` did not find: \(extra.sorted().prefix(10)) of \(extra.count)", file: file, line: line)
        for (id, anomaly) in storedByID {
            guard let offline = expected[id] else { continue }
            XCTAssertEqual(anomaly.kind.rawValue, offline.kind, "kind of \(id)", file: file, line: line)
            XCTAssertEqual(anomaly.symbol, offline.symbol, "symbol of \(id)", file: file, line: line)
            XCTAssertEqual(anomaly.windowStartMs, offline.windowStartMs, "window of \(id)", file: file, line: line)
            XCTAssertEqual(anomaly.value, offline.value, "value of \(id)", file: file, line: line)
            XCTAssertEqual(anomaly.expected, offline.expected, "expected of \(id)", file: file, line: line)
            XCTAssertEqual(anomaly.severity.rawValue, offline.severity, "severity of \(id)", file: file, line: line)
            XCTAssertEqual(anomaly.suppressed, offline.suppressed, "suppressed flag of \(id)", file: file, line: line)
        }
    }
}

/// One line of `vigil detect --out` (snake_case JSON).
struct OfflineAnomaly: Decodable {
    var id: String
    var symbol: String
    var kind: String
    var severity: String
    var windowStartMs: Int64
    var windowEndMs: Int64
    var value: Double
    var expected: Double
    var suppressed: Bool
}
