import Coordinator
import Detection
import Foundation
import Protocol
import XCTest

/// `GET /metrics` on the coordinator: what is counted, and that the output is valid Prometheus
/// text (every family has HELP and TYPE; `promtool check metrics` when it is installed).
final class MetricsTests: CoordinatorTestCase {
    let start: Int64 = 1_723_161_600_000

    /// Registers w1, sends two heartbeats, a report and a checkpoint; returns the node.
    private func busyNode(_ clock: ManualClock) async throws -> CoordinatorNode {
        let node = try makeNode(store: try openStore(), clock: clock, partitions: 2)
        _ = try await node.registerWorker("w1")
        _ = try await node.beat("w1")
        for (second, consumed) in [(0, Int64(1_000)), (1, 2_500)] {
            let progress = PartitionProgress(
                partition: 1, epoch: 1, nextOffset: consumed, logEndOffset: 3_000, consumed: consumed, windowed: consumed - 10, late: 10,
                windowsClosed: consumed / 100, watermarkMs: start - 15_000)
            let _: HeartbeatResponse = try await node.post(RPCPath.heartbeat, HeartbeatRequest(workerID: "w1", partitions: [progress]))
            if second == 0 { clock.advance(by: 1_000) }
        }
        var shock = anomaly("BTCUSDT", .priceShock, .critical, windowStartMs: start - 80_000, partition: 1)
        shock.detectedAtMs = start - 11_500  // closed by a trade at start - 1.5 s (allowed lateness 10 s)
        let _: ReportResponse = try await node.post(RPCPath.report, ReportRequest(
            workerID: "w1", partition: 1, epoch: 1, anomalies: [shock], windows: [window("BTCUSDT", startMs: start - 80_000)],
            lateEvents: [LateEvent(partition: 1, offset: 5, symbol: "BTCUSDT", eventTimeMs: start - 90_000, watermarkMs: start - 20_000)]))
        let _: CheckpointResponse = try await node.post(RPCPath.checkpoint, CheckpointRequest(
            workerID: "w1", partition: 1, epoch: 1, nextOffset: 2_500, state: Data(count: 20_000), watermarkMs: start - 15_000, durationMs: 3))
        // A zombie's write is refused, and counted.
        let _: CheckpointResponse = try await node.post(RPCPath.checkpoint, CheckpointRequest(
            workerID: "zombie", partition: 1, epoch: 1, nextOffset: 1, state: Data(), watermarkMs: 0, durationMs: 0))
        return node
    }

    func testMetricsCountWhatTheCoordinatorReceivedAndShowTheClusterState() async throws {
        let clock = ManualClock(start)
        let node = try await busyNode(clock)
        let response = await node.handle(HTTPRequest(method: "GET", path: RPCPath.metrics))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("content-type"), "text/plain; version=0.0.4; charset=utf-8")
        let samples = Self.samples(response.text)

        XCTAssertEqual(samples[#"vigil_anomalies_stored_total{kind="price_shock",severity="critical",suppressed="false"}"#], 1)
        XCTAssertEqual(samples["vigil_windows_stored_total"], 1)
        XCTAssertEqual(samples["vigil_late_events_stored_total"], 1)
        XCTAssertEqual(samples["vigil_checkpoints_rejected_total"], 1)
        XCTAssertEqual(samples["vigil_reports_rejected_total"], 0)
        XCTAssertEqual(samples[#"vigil_partition_records_consumed_total{partition="1"}"#], 2_500, "counted up to the last heartbeat")
        XCTAssertEqual(samples[#"vigil_partition_records_processed_total{partition="1"}"#], 2_490)
        XCTAssertEqual(samples[#"vigil_partition_windows_closed_total{partition="1"}"#], 25)
        XCTAssertEqual(samples[#"vigil_partition_lag_records{partition="1"}"#], 500)
        XCTAssertEqual(samples[#"vigil_partition_watermark_delay_seconds{partition="1"}"#], 16)
        XCTAssertEqual(samples[#"vigil_workers{state="up"}"#], 1)
        XCTAssertEqual(samples["vigil_partitions_unowned"], 0)
        XCTAssertEqual(samples["vigil_checkpoint_size_bytes_count"], 1)
        XCTAssertEqual(samples[#"vigil_checkpoint_size_bytes_bucket{le="65536.0"}"#], 1)
        XCTAssertEqual(samples[#"vigil_checkpoint_size_bytes_bucket{le="16384.0"}"#], 0)
        XCTAssertEqual(samples["vigil_checkpoint_duration_seconds_sum"] ?? 0, 0.003, accuracy: 1e-9)
        XCTAssertEqual(samples["vigil_detection_latency_seconds_count"], 1)
        XCTAssertEqual(samples["vigil_detection_latency_seconds_sum"] ?? 0, 2.5, accuracy: 1e-9, "stored at start + 1 s, closed by a trade at start - 1.5 s")
        XCTAssertEqual(samples[#"vigil_http_request_duration_seconds_count{route="POST /rpc/heartbeat"}"#], 3)
        XCTAssertEqual(samples[#"vigil_http_request_duration_seconds_count{route="POST /rpc/checkpoint"}"#], 2)

        // A heartbeat from a restored (lower) count adds nothing; growth after it counts.
        for consumed in [Int64(2_000), 2_600] {
            let progress = PartitionProgress(partition: 1, epoch: 1, nextOffset: consumed, logEndOffset: 3_000, consumed: consumed)
            let _: HeartbeatResponse = try await node.post(RPCPath.heartbeat, HeartbeatRequest(workerID: "w1", partitions: [progress]))
        }
        let after = Self.samples(await node.handle(HTTPRequest(method: "GET", path: RPCPath.metrics)).text)
        XCTAssertEqual(after[#"vigil_partition_records_consumed_total{partition="1"}"#], 3_100)
    }

    func testEveryFamilyHasHelpAndTypeAndPromtoolAcceptsTheOutput() async throws {
        let node = try await busyNode(ManualClock(start))
        let text = await node.handle(HTTPRequest(method: "GET", path: RPCPath.metrics)).text
        Self.assertWellFormed(text)
        try Self.promtool(text, name: "coordinator", directory: directory)
    }

    func testRoutesAreReducedToTheirPatterns() {
        XCTAssertEqual(CoordinatorMetrics.route(method: "POST", path: "/v1/anomalies/00ff/ack"), "POST /v1/anomalies/{id}/ack")
        XCTAssertEqual(CoordinatorMetrics.route(method: "GET", path: "/v1/anomalies/00ff"), "GET /v1/anomalies/{id}")
        XCTAssertEqual(CoordinatorMetrics.route(method: "GET", path: "/v1/symbols/BTCUSDT/windows"), "GET /v1/symbols/{symbol}/windows")
        XCTAssertEqual(CoordinatorMetrics.route(method: "GET", path: "/wp-admin/x.php"), "other")
        XCTAssertEqual(CoordinatorMetrics.route(method: "POST", path: RPCPath.report), "POST /rpc/report")
    }

    // MARK: - Helpers (also used by other tests)

    /// Sample lines by series (`name{labels}`), as numbers.
    static func samples(_ text: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            result[String(line[..<space])] = value
        }
        return result
    }

    /// Every sample's family has exactly one HELP and one TYPE line, before its samples.
    static func assertWellFormed(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        var help: [String: Int] = [:]
        var type: [String: String] = [:]
        for row in text.split(separator: "\n") {
            let parts = row.split(separator: " ", maxSplits: 3)
            if row.hasPrefix("# HELP ") {
                help[String(parts[2]), default: 0] += 1
            } else if row.hasPrefix("# TYPE ") {
                XCTAssertNil(type[String(parts[2])], "two TYPE lines for \(parts[2])", file: file, line: line)
                type[String(parts[2])] = String(parts[3])
            } else {
                let series = row.prefix { $0 != "{" && $0 != " " }
                var family = String(series)
                for suffix in ["_bucket", "_sum", "_count"] where type[family] == nil && family.hasSuffix(suffix) {
                    family = String(family.dropLast(suffix.count))
                }
                XCTAssertNotNil(type[family], "no TYPE line before sample \(row)", file: file, line: line)
                XCTAssertEqual(help[family], 1, "no (or repeated) HELP line for \(family)", file: file, line: line)
                if type[family] == "counter" {
                    XCTAssertTrue(family.hasSuffix("_total"), "counter \(family) must end in _total", file: file, line: line)
                }
            }
        }
        XCTAssertFalse(type.isEmpty, "no metrics at all", file: file, line: line)
    }

    /// Runs `promtool check metrics` on `text`; skips the test when promtool is not installed.
    static func promtool(_ text: String, name: String, directory: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let candidates = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        guard let promtool = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("promtool is not installed (Debian package `prometheus`; `scripts/install-deps.sh --test` installs it): the exposition format was checked without it")
        }
        let input = directory.appendingPathComponent("\(name).prom")
        try text.write(to: input, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "\"$0\" check metrics < \"$1\" 2>&1", promtool, input.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "promtool check metrics rejected the \(name)'s /metrics:\n\(report)", file: file, line: line)
    }
}
