import Coordinator
import Detection
import Foundation
import Protocol
import XCTest

/// Retention as the coordinator applies it: from its `tick()`, every `retentionIntervalMs`, with
/// the policy of cluster.conf's `[retention]`.
final class RetentionTests: CoordinatorTestCase {
    let start: Int64 = 1_723_161_600_000
    let day: Int64 = 86_400_000

    func testTicksDeleteWindowsAfterADayAndAnomaliesAfterThirtyDays() async throws {
        let clock = ManualClock(start)
        let store = try openStore()
        let config = CoordinatorConfig(
            databasePath: store.path, listenAddress: "127.0.0.1:7070", settings: Self.settings(partitions: 1),
            retention: RetentionPolicy(windowsMs: day, anomaliesMs: 30 * day), retentionIntervalMs: 600_000)
        let node = try CoordinatorNode(config: config, store: store, logger: logs.logger("coordinator"), clock: clock.read)
        _ = try await node.registerWorker("w1")
        _ = try await node.beat("w1")
        let _: ReportResponse = try await node.post(RPCPath.report, ReportRequest(
            workerID: "w1", partition: 0, epoch: 1, anomalies: [anomaly("BTCUSDT", .priceShock, .high, windowStartMs: start)],
            windows: [window("BTCUSDT", startMs: start), window("BTCUSDT", startMs: start + 20_000)],
            lateEvents: [LateEvent(partition: 0, offset: 1, symbol: "BTCUSDT", eventTimeMs: start - 60_000, watermarkMs: start - 10_000)]))
        await node.tick()  // the first tick applies retention at once: nothing is old yet
        var counts = try await store.counts()
        XCTAssertEqual([counts.windows, counts.lateEvents, counts.anomalies], [2, 1, 1])

        // Exactly a day old is kept; older is not, at the next retention tick.
        clock.advance(by: day)
        await node.tick()
        counts = try await store.counts()
        XCTAssertEqual(counts.windows, 2, "stored exactly a day ago: kept")
        clock.advance(by: 600_000)
        await node.tick()
        counts = try await store.counts()
        XCTAssertEqual([counts.windows, counts.lateEvents, counts.anomalies], [0, 0, 1], "windows and late events go after a day, anomalies stay")
        XCTAssertTrue(logs.contains("retention applied"))

        clock.advance(by: 29 * day)
        await node.tick()
        counts = try await store.counts()
        XCTAssertEqual(counts.anomalies, 0, "anomalies go after 30 days")

        let metrics = MetricsTests.samples(await node.handle(HTTPRequest(method: "GET", path: RPCPath.metrics)).text)
        XCTAssertEqual(metrics[#"vigil_retention_deleted_rows_total{table="windows"}"#], 2)
        XCTAssertEqual(metrics[#"vigil_retention_deleted_rows_total{table="late_events"}"#], 1)
        XCTAssertEqual(metrics[#"vigil_retention_deleted_rows_total{table="anomalies"}"#], 1)
    }

    func testRetentionWaitsForItsInterval() async throws {
        let clock = ManualClock(start)
        let store = try openStore()
        let config = CoordinatorConfig(
            databasePath: store.path, listenAddress: "127.0.0.1:7070", settings: Self.settings(partitions: 1),
            retention: RetentionPolicy(windowsMs: 1_000, anomaliesMs: 1_000), retentionIntervalMs: 60_000)
        let node = try CoordinatorNode(config: config, store: store, logger: logs.logger("coordinator"), clock: clock.read)
        await node.tick()
        _ = try await node.registerWorker("w1")
        _ = try await node.beat("w1")
        let _: ReportResponse = try await node.post(RPCPath.report, ReportRequest(
            workerID: "w1", partition: 0, epoch: 1, windows: [window("ETHUSDT", startMs: start)]))
        clock.advance(by: 59_999)
        await node.tick()
        var counts = try await store.counts()
        XCTAssertEqual(counts.windows, 1, "the interval has not passed: no retention pass")
        clock.advance(by: 1)
        await node.tick()
        counts = try await store.counts()
        XCTAssertEqual(counts.windows, 0)
    }
}
