import Detection
import Foundation
import Logging
import Protocol
import Synchronization
import XCTest

/// The operator's view of a real cluster (broker, coordinator and two worker processes replaying a
/// simulated market): `vigil status`, Prometheus metrics of the coordinator and of each worker
/// (checked by `promtool` when installed), alerts to a webhook that fails at first, progress
/// lines in worker logs, and the dashboard rendered by headless Chromium.
///
/// `VIGIL_OPERATOR_DOCS=docs swift test --filter OperatorTests` also writes `docs/status.txt`
/// (a `vigil status` sample) and `docs/dashboard.png` (a screenshot) from the run.
final class OperatorTests: ClusterTestCase {
    /// A webhook on loopback that refuses its first `failures` deliveries with 503, then accepts.
    final class Webhook: HTTPHandler {
        private let state: Mutex<(failuresLeft: Int, attempts: Int, accepted: [String])>

        init(failures: Int) { state = Mutex((failures, 0, [])) }

        func handle(_ request: HTTPRequest) async -> HTTPResponse {
            state.withLock { state in
                state.attempts += 1
                if state.failuresLeft > 0 {
                    state.failuresLeft -= 1
                    return .text("try later", status: 503)
                }
                state.accepted.append(String(decoding: request.body, as: UTF8.self))
                return .text("ok")
            }
        }

        var attempts: Int { state.withLock { $0.attempts } }
        /// Anomaly ids of the accepted alerts (the last word of the attachment's footer).
        var acceptedIDs: [String] {
            state.withLock { $0.accepted }.compactMap { body -> String? in
                let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
                let footer = (json?["attachments"] as? [[String: Any]])?.first?["footer"] as? String
                return footer?.split(separator: " ").last.map(String.init)
            }
        }
    }

    /// Simulated trades replayed into a two-worker cluster, processed completely.
    private func runReplayedMarket(extraConfig: String = "") async throws -> (lines: Int, status: ClusterStatus, anomalies: [StoredAnomaly]) {
        let trades = harness.directory.appendingPathComponent("trades.jsonl").path
        _ = try harness.run("simulate", [
            "simulate", "--out", trades, "--duration", "30m", "--rate", "60", "--seed", "42", "--start-ms", "1700000000000",
        ])
        let lines = try String(contentsOfFile: trades, encoding: .utf8).split(separator: "\n").count
        try startBrokerAndCoordinator(extraConfig: extraConfig)
        try startWorker("w1")
        try startWorker("w2")
        _ = try await awaitStatus("two workers sharing the partitions", timeout: .seconds(60)) { s in
            s.workers.filter { $0.state == "up" }.count == 2 && s.partitions.allSatisfy { $0.owner != nil }
        }
        _ = try harness.run("replay", ["ingest", "replay", trades, "--brokers", bootstrap, "--topic", "trades"])
        let status = try await awaitFullyProcessed(total: Int64(lines))
        let anomalies = try await awaitStableAnomalies(expected: 1)
        XCTAssertFalse(anomalies.isEmpty, "the simulated market's injected anomalies are detected")
        return (lines, status, anomalies)
    }

    func testStatusMetricsAlertsAndProgressOfARealCluster() async throws {
        let webhook = Webhook(failures: 2)
        var logger = Logger(label: "it.webhook")
        logger.logLevel = .error
        let webhookServer = HTTPServer(host: "127.0.0.1", port: 0, handler: webhook, logger: logger)
        let webhookPort = try await webhookServer.start()
        let (lines, _, _) = try await runReplayedMarket(extraConfig: """
            [retention]
            windows = "1d"
            anomalies = "30d"
            [alerts]
            webhook_url = "http://127.0.0.1:\(webhookPort)/services/hook"
            min_severity = "medium"
            dashboard_url = "http://127.0.0.1:7070/"
            """)

        // vigil status: the tables, every worker with its metrics endpoint, exit 0 when healthy.
        let text = try harness.run("status", ["status", "--coordinator", coordinatorAddress])
        for heading in ["WORKERS", "PARTITIONS", "ANOMALIES (last 15m0s)", "PROBLEMS"] {
            XCTAssertTrue(text.contains(heading), "vigil status shows \(heading):\n\(text)")
        }
        XCTAssertTrue(text.contains("PROBLEMS\nnone"), text)
        let json = try harness.run("status-json", ["status", "--coordinator", coordinatorAddress, "--json"])
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let status = try decoder.decode(ClusterStatus.self, from: Data(json.utf8))
        XCTAssertEqual(status.workers.map(\.id).sorted(), ["w1", "w2"])
        XCTAssertEqual(status.workers.compactMap(\.restarts), [0, 0])
        XCTAssertEqual(status.partitions.map(\.lag).filter { $0 > 0 }, [], "caught up")
        XCTAssertEqual(status.partitions.compactMap(\.lagSeconds).filter { $0 > 0 }, [])
        XCTAssertGreaterThan(status.workers.compactMap(\.symbols).reduce(0, +), 0)
        XCTAssertNotNil(status.recentAnomalies)
        if let docs = ProcessInfo.processInfo.environment["VIGIL_OPERATOR_DOCS"] {
            try text.write(toFile: "\(docs)/status.txt", atomically: true, encoding: .utf8)
        }

        // Prometheus: the coordinator's and each worker's /metrics (on the worker's own port).
        let coordinatorMetrics = try await fetch(coordinatorAddress, RPCPath.metrics)
        XCTAssertTrue(coordinatorMetrics.contains("vigil_anomalies_stored_total{"), coordinatorMetrics)
        try promtool(coordinatorMetrics, name: "coordinator")
        // Counters follow heartbeats, and a partition handed from one worker to the other is counted
        // by each for its own share: poll until the workers' counters add up to every record.
        var texts: [String: String] = [:]
        for worker in status.workers {
            _ = try XCTUnwrap(worker.metricsAddress, "worker \(worker.id) reported its metrics address")
            XCTAssertTrue(workers.first { $0.name == "worker-\(worker.id)" }?.stderr.contains("metrics listening") ?? false)
        }
        var consumed = 0.0
        try await poll("the workers' metrics to count all \(lines) records", timeout: .seconds(15)) {
            consumed = 0
            for worker in status.workers {
                let text = try await self.fetch(worker.metricsAddress!, RPCPath.metrics)
                texts[worker.id] = text
                consumed += Self.sum(text, "vigil_worker_records_consumed_total")
            }
            return consumed == Double(lines)
        }
        for (id, text) in texts.sorted(by: { $0.key < $1.key }) {
            try promtool(text, name: "worker-\(id)")
        }
        XCTAssertEqual(consumed, Double(lines), "the workers' counters add up to every record")

        // Alerts: every stored, unsuppressed anomaly of medium or higher arrives once, although the
        // webhook refused the first two deliveries.
        var alertable: Set<String> = []
        try await poll("every alertable anomaly to be delivered", timeout: .seconds(60)) {
            let stored = try await self.storedAnomalies()
            alertable = Set(stored.filter { !$0.anomaly.suppressed && $0.anomaly.severity >= .medium }.map(\.anomaly.id))
            return !alertable.isEmpty && Set(webhook.acceptedIDs) == alertable
        }
        XCTAssertEqual(webhook.acceptedIDs.count, alertable.count, "no alert twice")
        XCTAssertEqual(webhook.attempts, alertable.count + 2, "two refused attempts, then one per alert")

        // Progress lines in the worker logs: the first comes one progress interval (5 s) after the
        // worker's first heartbeat with partitions, which may be later than everything above.
        for worker in workers {
            try await poll("\(worker.name) to log its progress", timeout: .seconds(15)) {
                worker.stderr.contains("progress partition=")
            }
        }
        await webhookServer.shutdown()
    }

    func testTheDashboardRendersChartsAndTablesFromRealData() async throws {
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("chromium is not installed (Debian package `chromium`; `scripts/install-deps.sh --test` installs it): the dashboard was not rendered")
        }
        let (_, _, anomalies) = try await runReplayedMarket()
        let symbol = Dictionary(grouping: anomalies, by: \.anomaly.symbol).max { $0.value.count < $1.value.count }!.key
        let url = "http://\(coordinatorAddress)/#symbol=\(symbol)"
        let dom = try browse(chromium, ["--dump-dom", url])

        XCTAssertTrue(dom.contains("data-refreshes=\""), "the page's script ran")
        XCTAssertFalse(dom.contains("data-refreshes=\"0\""), "the page refreshed from the API at least once:\n\(dom.prefix(3000))")
        let points = try XCTUnwrap(Self.firstInt(after: "data-points=\"", in: dom), "the price chart has a line")
        XCTAssertGreaterThan(points, 30, "30 minutes of 20 s windows")
        XCTAssertTrue(dom.contains("data-symbol=\"\(symbol)\""), "the chart shows \(symbol)")
        XCTAssertGreaterThan(dom.components(separatedBy: "class=\"marker ").count - 1, 0, "anomalies of \(symbol) are marked on the chart")
        let newest = try XCTUnwrap(anomalies.first).anomaly
        XCTAssertTrue(dom.contains("data-id=\"\(newest.id)\""), "the newest anomaly is in the table")
        XCTAssertTrue(dom.contains("class=\"sev \(newest.severity.rawValue)"), "with its severity colour")
        XCTAssertTrue(dom.contains(">Acknowledge</button>"))
        for worker in ["w1", "w2"] {
            XCTAssertTrue(dom.contains("data-worker=\"\(worker)\""), "worker \(worker) is in the workers panel")
        }
        XCTAssertEqual(dom.components(separatedBy: "data-partition=\"").count - 1, 12, "every partition is in the partitions panel")

        if let docs = ProcessInfo.processInfo.environment["VIGIL_OPERATOR_DOCS"] {
            let png = URL(fileURLWithPath: docs).appendingPathComponent("dashboard.png").path
            _ = try browse(chromium, ["--screenshot=\(png)", "--window-size=1440,1000", "--hide-scrollbars", url])
            XCTAssertTrue(FileManager.default.fileExists(atPath: png))
        }
    }

    // MARK: - Helpers

    /// Runs headless Chromium on `arguments` after the page's script had 8 s of (virtual) time.
    private func browse(_ chromium: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium)
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--user-data-dir=\(harness.directory.appendingPathComponent("chromium").path)", "--virtual-time-budget=8000",
        ] + arguments
        let out = Pipe()
        let err = harness.directory.appendingPathComponent("chromium.stderr")
        FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = out
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "chromium failed: \((try? String(contentsOf: err, encoding: .utf8)) ?? "")")
        return String(decoding: data, as: UTF8.self)
    }

    private func fetch(_ address: String, _ path: String) async throws -> String {
        var logger = Logger(label: "it.metrics")
        logger.logLevel = .error
        let client = try RPCClient(address: address, logger: logger)
        defer { Task { await client.close() } }
        let response = try await client.request(method: "GET", path: path)
        XCTAssertEqual(response.status, 200, "GET \(address)\(path)")
        return String(decoding: response.body, as: UTF8.self)
    }

    /// Polls `condition` every 250 ms until it holds; the failure says what was awaited.
    private func poll(_ what: String, timeout: Duration, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !(try await condition()) {
            if ContinuousClock.now > deadline {
                throw HarnessError("timed out after \(timeout) waiting for \(what)")
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Sum of every sample of `family` in Prometheus text.
    static func sum(_ text: String, _ family: String) -> Double {
        text.split(separator: "\n").filter { $0.hasPrefix(family + "{") || $0.hasPrefix(family + " ") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    static func firstInt(after marker: String, in text: String) -> Int? {
        guard let range = text.range(of: marker) else { return nil }
        return Int(text[range.upperBound...].prefix { $0.isNumber })
    }

    /// `promtool check metrics`, or a note when promtool is not installed.
    private func promtool(_ text: String, name: String) throws {
        guard let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            print("promtool is not installed (Debian package `prometheus`): \(name)'s /metrics was not linted")
            return
        }
        let input = harness.directory.appendingPathComponent("\(name).prom")
        try text.write(to: input, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "\"$0\" check metrics < \"$1\" 2>&1", promtool, input.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "promtool check metrics rejected \(name)'s /metrics:\n\(report)")
    }
}
