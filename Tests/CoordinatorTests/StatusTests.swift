import Coordinator
import Detection
import Foundation
import Protocol
import XCTest

/// The operator's view of `/v1/status`: rates, lag in seconds, checkpoint and watermark ages,
/// recent late events and anomalies, and the problems they reveal.
final class StatusTests: CoordinatorTestCase {
    let start: Int64 = 1_723_161_600_000

    func testTrackerMeasuresRatesOverItsWindowAndStartsOverForANewEpoch() {
        var tracker = StatusTracker(rateWindowMs: 10_000)
        for second in 0...20 {
            let now = start + Int64(second) * 1_000
            // 300 records/s arrive, 200/s are processed.
            tracker.progress(PartitionProgress(partition: 0, epoch: 1, nextOffset: Int64(second) * 200, logEndOffset: Int64(second) * 300, watermarkMs: now - 10_000, symbols: 3), now: now)
        }
        var view = tracker.partition(0, epoch: 1)
        XCTAssertEqual(view?.inPerSecond ?? 0, 300, accuracy: 1e-9)
        XCTAssertEqual(view?.processedPerSecond ?? 0, 200, accuracy: 1e-9)
        XCTAssertEqual(view?.ownedSinceMs, start)
        XCTAssertEqual(view?.watermarkAdvancedMs, start + 20_000)
        XCTAssertEqual(view?.symbols, 3)
        XCTAssertNil(tracker.partition(0, epoch: 2), "another epoch's view is not this owner's")

        // A new owner: no rate until its samples span a second; owned since its first heartbeat.
        tracker.progress(PartitionProgress(partition: 0, epoch: 2, nextOffset: 3_000, logEndOffset: 6_000), now: start + 30_000)
        view = tracker.partition(0, epoch: 2)
        XCTAssertNil(view?.inPerSecond)
        XCTAssertNil(view?.processedPerSecond)
        XCTAssertEqual(view?.ownedSinceMs, start + 30_000)
        tracker.progress(PartitionProgress(partition: 0, epoch: 2, nextOffset: 4_000, logEndOffset: 6_000), now: start + 32_000)
        XCTAssertEqual(tracker.partition(0, epoch: 2)?.processedPerSecond ?? 0, 500, accuracy: 1e-9)
        XCTAssertEqual(tracker.partition(0, epoch: 2)?.inPerSecond ?? -1, 0, accuracy: 1e-9)
    }

    func testTrackerCountsProcessRestartsAndCPU() {
        var tracker = StatusTracker()
        tracker.registered(worker: "w1", pid: 100, metricsAddress: "127.0.0.1:9100")
        tracker.registered(worker: "w1", pid: 100, metricsAddress: "127.0.0.1:9100")
        XCTAssertEqual(tracker.worker("w1")?.restarts, 0, "registering again from the same process is not a restart")
        tracker.load(worker: "w1", cpuSeconds: 10, now: start)
        tracker.load(worker: "w1", cpuSeconds: 10.5, now: start + 1_000)
        XCTAssertEqual(tracker.worker("w1")?.cpuPercent ?? 0, 50, accuracy: 1e-9)
        tracker.registered(worker: "w1", pid: 101, metricsAddress: "127.0.0.1:9200")
        XCTAssertEqual(tracker.worker("w1"), StatusTracker.WorkerView(restarts: 1, metricsAddress: "127.0.0.1:9200", cpuPercent: nil))
    }

    func testStatusShowsRatesLagAgesRecentLateEventsAndAnomalies() async throws {
        let clock = ManualClock(start)
        let store = try openStore()
        let node = try makeNode(store: store, clock: clock, partitions: 2)
        let _: RegisterResponse = try await node.post(RPCPath.register, RegisterRequest(workerID: "w1", address: "10.0.0.1", pid: 7, metricsAddress: "10.0.0.1:9100"))
        _ = try await node.beat("w1")

        // Partition 0: 100 records/s arrive, 80/s are processed, for 10 s.
        for second in 0...10 {
            let progress = PartitionProgress(
                partition: 0, epoch: 1, nextOffset: Int64(second) * 80, logEndOffset: Int64(second) * 100, consumed: Int64(second) * 80,
                watermarkMs: start - 20_000 + Int64(second) * 1_000, symbols: 4)
            let _: HeartbeatResponse = try await node.post(RPCPath.heartbeat, HeartbeatRequest(workerID: "w1", partitions: [progress], rssBytes: 64 << 20, cpuSeconds: Double(second) * 0.25))
            if second < 10 { clock.advance(by: 1_000) }
        }
        let late = (0..<3).map { LateEvent(partition: 0, offset: Int64($0), symbol: "BTCUSDT", eventTimeMs: start - 60_000, watermarkMs: start - 20_000) }
        let _: ReportResponse = try await node.post(RPCPath.report, ReportRequest(
            workerID: "w1", partition: 0, epoch: 1,
            anomalies: [
                anomaly("BTCUSDT", .priceShock, .critical, windowStartMs: start - 120_000),
                anomaly("BTCUSDT", .volumeSpike, .high, windowStartMs: start - 120_000),
                anomaly("ETHUSDT", .priceShock, .medium, windowStartMs: start - 120_000),
                { var a = anomaly("ETHUSDT", .volumeSpike, .medium, windowStartMs: start - 100_000); a.suppressed = true; return a }(),
            ],
            lateEvents: late))
        let _: CheckpointResponse = try await node.post(RPCPath.checkpoint, CheckpointRequest(
            workerID: "w1", partition: 0, epoch: 1, nextOffset: 640, state: Data([1, 2, 3]), watermarkMs: start - 12_000, durationMs: 1.5))
        clock.advance(by: 2_000)

        let status: ClusterStatus = try await node.get(RPCPath.status)
        let p0 = status.partitions[0]
        XCTAssertEqual(p0.inPerSecond ?? 0, 100, accuracy: 1e-9)
        XCTAssertEqual(p0.processedPerSecond ?? 0, 80, accuracy: 1e-9)
        XCTAssertEqual(p0.lag, 200)
        XCTAssertEqual(p0.lagSeconds ?? 0, 2, accuracy: 1e-9, "200 records behind at 100 records/s")
        XCTAssertEqual(p0.committedOffset, 640)
        XCTAssertEqual(p0.checkpointAgeMs, 2_000)
        XCTAssertEqual(p0.lateRecent, 3)
        XCTAssertEqual(p0.symbols, 4)
        XCTAssertNil(status.partitions[1].inPerSecond, "no heartbeat progress for partition 1")
        XCTAssertEqual(status.partitions[1].lateRecent, 0)

        let w1 = try XCTUnwrap(status.workers.first)
        XCTAssertEqual(w1.metricsAddress, "10.0.0.1:9100")
        XCTAssertEqual(w1.restarts, 0)
        XCTAssertEqual(w1.inPerSecond ?? 0, 100, accuracy: 1e-9)
        XCTAssertEqual(w1.processedPerSecond ?? 0, 80, accuracy: 1e-9)
        XCTAssertEqual(w1.lag, 200)
        XCTAssertEqual(w1.symbols, 4)
        XCTAssertEqual(w1.watermarkAgeMs, 22_000, "the last heartbeat's watermark trailed by 20 s, 2 s ago")
        XCTAssertEqual(w1.cpuPercent ?? 0, 25, accuracy: 1e-9)
        XCTAssertNil(w1.checkpointAgeMs, "partition 1 of w1 has no checkpoint yet")

        let recent = try XCTUnwrap(status.recentAnomalies)
        XCTAssertEqual(recent.bySeverity, ["critical": 1, "high": 1, "medium": 1])
        XCTAssertEqual(recent.suppressed, 1)
        XCTAssertEqual(recent.topSymbols, [.init(symbol: "BTCUSDT", count: 2), .init(symbol: "ETHUSDT", count: 1)])
        XCTAssertEqual(status.problems, [])

        // 16 minutes later the late events and anomalies are no longer recent.
        clock.advance(by: 16 * 60_000)
        let later: ClusterStatus = try await node.get(RPCPath.status)
        XCTAssertEqual(later.partitions[0].lateRecent, 0)
        XCTAssertEqual(later.recentAnomalies?.bySeverity, [:])
        XCTAssertEqual(later.recentAnomalies?.topSymbols, [])
    }

    func testStalledWatermarkAndOverdueCheckpointsAreProblems() async throws {
        let clock = ManualClock(start)
        let node = try makeNode(store: try openStore(), clock: clock, partitions: 1)
        _ = try await node.registerWorker("w1")
        _ = try await node.beat("w1")
        // Records keep arriving, but the offset and the watermark are stuck; no checkpoint comes.
        for second in 0...30 {
            let progress = PartitionProgress(partition: 0, epoch: 1, nextOffset: 500, logEndOffset: 500 + Int64(second) * 10, watermarkMs: start - 10_000)
            let _: HeartbeatResponse = try await node.post(RPCPath.heartbeat, HeartbeatRequest(workerID: "w1", partitions: [progress]))
            if second == 29 {
                let status: ClusterStatus = try await node.get(RPCPath.status)
                XCTAssertEqual(status.problems, [], "29 s is within both thresholds")
            }
            if second < 30 { clock.advance(by: 1_000) }
        }
        var status: ClusterStatus = try await node.get(RPCPath.status)
        XCTAssertEqual(status.problems, [
            "partition 0's watermark has not advanced for 30 s although records arrive or wait (lag 300, owner w1); the owner is stuck or the trades are late: check its log",
            "partition 0 has stored no checkpoint for 30 s (one every 10 s expected; owner w1); a failover now would replay from the start offset",
        ])

        // A checkpoint and a moving watermark clear both.
        let _: CheckpointResponse = try await node.post(RPCPath.checkpoint, CheckpointRequest(
            workerID: "w1", partition: 0, epoch: 1, nextOffset: 500, state: Data([1]), watermarkMs: start - 10_000, durationMs: 1))
        let moving = PartitionProgress(partition: 0, epoch: 1, nextOffset: 800, logEndOffset: 800, watermarkMs: start - 5_000)
        let _: HeartbeatResponse = try await node.post(RPCPath.heartbeat, HeartbeatRequest(workerID: "w1", partitions: [moving]))
        status = try await node.get(RPCPath.status)
        XCTAssertEqual(status.problems, [])
    }

    func testAWorkerRestartedUnderTheSameIDIsCounted() async throws {
        let node = try makeNode(store: try openStore(), clock: ManualClock(start), partitions: 1)
        let _: RegisterResponse = try await node.post(RPCPath.register, RegisterRequest(workerID: "w1", address: "h", pid: 10))
        let _: RegisterResponse = try await node.post(RPCPath.register, RegisterRequest(workerID: "w1", address: "h", pid: 11))
        let _: RegisterResponse = try await node.post(RPCPath.register, RegisterRequest(workerID: "w1", address: "h", pid: 12))
        let status: ClusterStatus = try await node.get(RPCPath.status)
        XCTAssertEqual(status.workers.first?.restarts, 2)
    }
}
