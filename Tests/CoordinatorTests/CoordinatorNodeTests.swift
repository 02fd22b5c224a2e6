import Coordinator
import Detection
import Foundation
import Protocol
import XCTest

final class CoordinatorNodeTests: CoordinatorTestCase {
    let start: Int64 = 1_723_161_600_000

    func testRegisterHeartbeatReportQueryAcknowledgeAndStatus() async throws {
        let clock = ManualClock(start)
        let node = try makeNode(store: try openStore(), clock: clock)
        let inserted = await node.insertedAnomalies()

        let registered = try await node.registerWorker("w1")
        XCTAssertEqual(registered.settings, Self.settings(), "workers get the cluster settings when they register")

        let beat = try await node.beat("w1")
        XCTAssertEqual(beat.status, .ok)
        XCTAssertEqual(beat.assignments, (0..<12).map { Assignment(partition: $0, epoch: 1) })

        // Anomalies detected at different event times, on partition 3.
        let shock = anomaly("BTCUSDT", .priceShock, .high, windowStartMs: start - 600_000, partition: 3)
        let spike = anomaly("ETHUSDT", .volumeSpike, .medium, windowStartMs: start - 400_000, partition: 3)
        let crash = anomaly("BTCUSDT", .flashCrash, .critical, windowStartMs: start - 200_000, partition: 3)
        let report = ReportRequest(workerID: "w1", partition: 3, epoch: 1, anomalies: [shock, spike, crash], windows: [window("BTCUSDT", startMs: start - 600_000)])
        let first: ReportResponse = try await node.post(RPCPath.report, report)
        XCTAssertEqual(first.accepted, true)
        XCTAssertEqual(first.inserted, 3)
        let replay: ReportResponse = try await node.post(RPCPath.report, report)
        XCTAssertEqual(replay.accepted, true)
        XCTAssertEqual(replay.inserted, 0, "a replay inserts nothing")

        var streamed: [Anomaly] = []
        for await anomaly in inserted {
            streamed.append(anomaly)
            if streamed.count == 3 { break }
        }
        XCTAssertEqual(streamed, [shock, spike, crash], "the hook sees each anomaly once, at its first insert")

        // Filters; newest (by detection time) first.
        let all: [StoredAnomaly] = try await node.get(RPCPath.anomalies)
        XCTAssertEqual(all.map(\.anomaly.id), [crash.id, spike.id, shock.id])
        XCTAssertEqual(all.first?.storedAtMs, start)
        let btc: [StoredAnomaly] = try await node.get(RPCPath.anomalies, query: ["symbol": "BTCUSDT"])
        XCTAssertEqual(btc.map(\.anomaly.id), [crash.id, shock.id])
        let spikes: [StoredAnomaly] = try await node.get(RPCPath.anomalies, query: ["kind": "volume_spike"])
        XCTAssertEqual(spikes.map(\.anomaly.id), [spike.id])
        let severe: [StoredAnomaly] = try await node.get(RPCPath.anomalies, query: ["severity": "high"])
        XCTAssertEqual(severe.map(\.anomaly.id), [crash.id, shock.id])
        let recent: [StoredAnomaly] = try await node.get(RPCPath.anomalies, query: ["since": "\(spike.detectedAtMs)"])
        XCTAssertEqual(recent.map(\.anomaly.id), [crash.id, spike.id])
        let newest: [StoredAnomaly] = try await node.get(RPCPath.anomalies, query: ["limit": "1"])
        XCTAssertEqual(newest.map(\.anomaly.id), [crash.id])
        let badKind = await node.handle(HTTPRequest(method: "GET", path: RPCPath.anomalies, query: ["kind": "moon"]))
        XCTAssertEqual(badKind.status, 400)
        XCTAssertTrue(badKind.text.contains("kind must be one of price_shock"), badKind.text)

        // Acknowledge.
        let ack: AckResponse = try await node.post("\(RPCPath.anomalies)/\(crash.id)/ack", Empty(), query: ["by": "alice"])
        XCTAssertEqual(ack.id, crash.id)
        XCTAssertEqual(ack.acknowledged, true)
        XCTAssertEqual(ack.acknowledgedBy, "alice")
        XCTAssertEqual(ack.acknowledgedAtMs, start)
        let unacknowledged: [StoredAnomaly] = try await node.get(RPCPath.anomalies, query: ["acknowledged": "false"])
        XCTAssertEqual(unacknowledged.map(\.anomaly.id), [spike.id, shock.id])
        let one: StoredAnomaly = try await node.get("\(RPCPath.anomalies)/\(crash.id)")
        XCTAssertEqual(one.acknowledgedBy, "alice")
        let missing = await node.handle(HTTPRequest(method: "POST", path: "\(RPCPath.anomalies)/ffffffffffffffff/ack", query: ["by": "alice"]))
        XCTAssertEqual(missing.status, 404)

        // Progress from a heartbeat shows in the status, with lost offsets as a problem.
        clock.advance(by: 1_000)
        let progress = PartitionProgress(
            partition: 3, epoch: 1, nextOffset: 1_600, logEndOffset: 1_650, consumed: 80, windowed: 78, late: 2,
            windowsClosed: 4, anomalies: 3, watermarkMs: start - 10_000, recordsPerSecond: 1_250, lost: [OffsetRange(from: 0, to: 1_520)])
        let stale = PartitionProgress(partition: 4, epoch: 9, nextOffset: 999_999)
        let _: HeartbeatResponse = try await node.post(RPCPath.heartbeat, HeartbeatRequest(workerID: "w1", partitions: [progress, stale], rssBytes: 50_000_000, cpuSeconds: 3.5))

        let status: ClusterStatus = try await node.get(RPCPath.status)
        XCTAssertEqual(status.clusterName, "test")
        XCTAssertEqual(status.coordinator, "127.0.0.1:7070")
        XCTAssertEqual(status.startedAtMs, start)
        XCTAssertEqual(status.nowMs, start + 1_000)
        XCTAssertEqual(status.anomalyCount, 3)
        XCTAssertEqual(status.workers.map(\.id), ["w1"])
        XCTAssertEqual(status.workers[0].state, "up")
        XCTAssertEqual(status.workers[0].partitions, Array(0..<12))
        XCTAssertEqual(status.workers[0].recordsPerSecond, 1_250)
        XCTAssertEqual(status.workers[0].rssBytes, 50_000_000)
        XCTAssertEqual(status.partitions.count, 12)
        let p3 = status.partitions[3]
        XCTAssertEqual([p3.nextOffset, p3.logEndOffset, p3.lag, p3.consumed, p3.late], [1_600, 1_650, 50, 80, 2])
        XCTAssertEqual(p3.owner, "w1")
        XCTAssertEqual(p3.lost, [OffsetRange(from: 0, to: 1_520)])
        XCTAssertEqual(status.partitions[4].nextOffset, -1, "progress under a wrong epoch is ignored")
        XCTAssertEqual(status.partitions[4].lag, -1)
        XCTAssertEqual(status.problems, ["partition 3 lost offsets 0..1520 to retention (1520 records never processed)"])
        XCTAssertTrue(logs.contains("partition lost offsets to retention"))
    }

    func testSilentWorkerGoesDownItsPartitionsMoveWithANewEpochAndItsOldWritesAreRejected() async throws {
        let clock = ManualClock(start)
        let node = try makeNode(store: try openStore(), clock: clock)
        _ = try await node.registerWorker("w1")
        let w1All = try await node.beat("w1").assignments
        XCTAssertEqual(w1All.count, 12)

        // w2 joins: half of w1's partitions are handed off. w1 still runs them, so w2 gets nothing yet.
        _ = try await node.registerWorker("w2")
        let w2Early = try await node.beat("w2").assignments
        XCTAssertEqual(w2Early, [])
        let w1Kept = try await node.beat("w1", running: w1All).assignments
        let handedOff = w1All.filter { !w1Kept.contains($0) }
        XCTAssertEqual(w1Kept.count, 6)
        XCTAssertEqual(handedOff.count, 6)

        // w1 checkpoints and releases each: then (and only then) w2 gets them under epoch 2.
        for item in handedOff {
            let checkpoint: CheckpointResponse = try await node.post(RPCPath.checkpoint, CheckpointRequest(
                workerID: "w1", partition: item.partition, epoch: 1, nextOffset: 500 + Int64(item.partition), state: Data("w1-final".utf8), watermarkMs: start, durationMs: 2))
            XCTAssertTrue(checkpoint.accepted)
            let released: ReleaseResponse = try await node.post(RPCPath.release, ReleaseRequest(workerID: "w1", partition: item.partition, epoch: 1))
            XCTAssertTrue(released.accepted)
        }
        let w2Got = try await node.beat("w2").assignments
        XCTAssertEqual(w2Got, handedOff.map { Assignment(partition: $0.partition, epoch: 2) })
        let restore: FetchCheckpointResponse = try await node.post(RPCPath.fetchCheckpoint, FetchCheckpointRequest(workerID: "w2", partition: w2Got[0].partition, epoch: 2))
        XCTAssertEqual(restore.accepted, true)
        XCTAssertEqual(restore.nextOffset, 500 + Int64(w2Got[0].partition), "the new owner restores the old owner's final checkpoint")
        XCTAssertEqual(restore.state, Data("w1-final".utf8))

        // w1 falls silent; w2 keeps heartbeating.
        for second in 1...7 {
            clock.advance(by: 1_000)
            _ = try await node.beat("w2", running: w2Got)
            await node.tick()
            let status: ClusterStatus = try await node.get(RPCPath.status)
            let w1 = status.workers.first { $0.id == "w1" }
            switch second {
            case 1, 2: XCTAssertEqual(w1?.state, "up", "after \(second) s")
            case 3...5:
                XCTAssertEqual(w1?.state, "suspect", "after \(second) s")
                XCTAssertTrue(status.problems.contains { $0.hasPrefix("worker w1 is suspect: no heartbeat for \(second).0 s") }, "\(status.problems)")
            default:
                XCTAssertEqual(w1?.state, "down", "after \(second) s")
                XCTAssertEqual(w1?.partitions, [])
                XCTAssertEqual(status.problems, [])
            }
        }
        XCTAssertTrue(logs.contains("worker down: lease expired"))

        let w2All = try await node.beat("w2", running: w2Got).assignments
        XCTAssertEqual(w2All.count, 12)
        for item in w1Kept {
            XCTAssertTrue(w2All.contains(Assignment(partition: item.partition, epoch: 2)), "partition \(item.partition) moved with epoch+1")
        }

        // The zombie's writes under its old epoch are refused, with a reason.
        let zombie = w1Kept[0]
        let report: ReportResponse = try await node.post(RPCPath.report, ReportRequest(
            workerID: "w1", partition: zombie.partition, epoch: 1, anomalies: [anomaly("BTCUSDT", .priceShock, .high, windowStartMs: 0)]))
        XCTAssertEqual(report.accepted, false)
        XCTAssertEqual(report.reason, "partition \(zombie.partition) is owned by w2 at epoch 2, not by w1 at epoch 1; stop the task")
        let checkpoint: CheckpointResponse = try await node.post(RPCPath.checkpoint, CheckpointRequest(
            workerID: "w1", partition: zombie.partition, epoch: 1, nextOffset: 9, state: Data(), watermarkMs: 0, durationMs: 0))
        XCTAssertEqual(checkpoint.accepted, false)
        let status: ClusterStatus = try await node.get(RPCPath.status)
        XCTAssertEqual(status.anomalyCount, 0)
        XCTAssertTrue(logs.contains("rejected report from a stale epoch or a non-owner"))

        // w1 comes back: it must register again, and gets no stale assignment.
        let refused = try await node.beat("w1", running: w1Kept)
        XCTAssertEqual(refused.status, .unknownWorker)
        _ = try await node.registerWorker("w1")
        let back = try await node.beat("w1", running: w1Kept)
        XCTAssertEqual(back.status, .ok)
        XCTAssertEqual(back.assignments, [], "its old partitions belong to w2 now; new ones come through handoffs")
    }

    func testWorkersStartingTogetherSplitThePartitionsAtOnce() async throws {
        let node = try makeNode(store: try openStore(), clock: ManualClock(start))
        _ = try await node.registerWorker("w1")
        _ = try await node.registerWorker("w2")
        // w1 was never told about any partition, so nothing needs a handoff.
        let w1 = try await node.beat("w1").assignments
        let w2 = try await node.beat("w2").assignments
        XCTAssertEqual(w1, (0..<6).map { Assignment(partition: $0, epoch: 1) })
        XCTAssertEqual(w2, (6..<12).map { Assignment(partition: $0, epoch: 2) })
    }

    func testRestartReloadsAssignmentsEpochsCheckpointsAndAnomalies() async throws {
        let clock = ManualClock(start)
        var store = try openStore()
        var node = try makeNode(store: store, clock: clock, partitions: 4)
        _ = try await node.registerWorker("w1")
        let owned = try await node.beat("w1").assignments
        let _: ReportResponse = try await node.post(RPCPath.report, ReportRequest(
            workerID: "w1", partition: 2, epoch: 1, anomalies: [anomaly("BTCUSDT", .volatilityBurst, .medium, windowStartMs: 0, partition: 2)]))
        let _: CheckpointResponse = try await node.post(RPCPath.checkpoint, CheckpointRequest(
            workerID: "w1", partition: 2, epoch: 1, nextOffset: 777, state: Data([7]), watermarkMs: 5, durationMs: 1))
        try store.close()

        clock.advance(by: 60_000)
        store = try openStore()
        node = try makeNode(store: store, clock: clock, partitions: 4)
        var status: ClusterStatus = try await node.get(RPCPath.status)
        XCTAssertEqual(status.partitions.map(\.owner), ["w1", "w1", "w1", "w1"])
        XCTAssertEqual(status.partitions.map(\.epoch), [1, 1, 1, 1])
        XCTAssertEqual(status.partitions[2].nextOffset, 777, "from the checkpoint until the owner reports")
        XCTAssertEqual(status.anomalyCount, 1)
        XCTAssertEqual(status.workers.map(\.state), ["restored"])
        XCTAssertEqual(status.problems, ["worker w1 has not registered since the coordinator restarted 0.0 s ago; its partitions 0, 1, 2, 3 wait for it"])

        // The worker's heartbeat is refused until it registers; then it keeps everything, same epochs.
        let refused = try await node.beat("w1", running: owned)
        XCTAssertEqual(refused.status, .unknownWorker)
        _ = try await node.registerWorker("w1")
        let kept = try await node.beat("w1", running: owned)
        XCTAssertEqual(kept.assignments, owned)
        let restore: FetchCheckpointResponse = try await node.post(RPCPath.fetchCheckpoint, FetchCheckpointRequest(workerID: "w1", partition: 2, epoch: 1))
        XCTAssertEqual(restore.nextOffset, 777)
        status = try await node.get(RPCPath.status)
        XCTAssertEqual(status.workers.map(\.state), ["up"])
        XCTAssertEqual(status.problems, [])
    }

    func testARestoredWorkerThatNeverComesBackLosesItsPartitions() async throws {
        let clock = ManualClock(start)
        var store = try openStore()
        var node = try makeNode(store: store, clock: clock, partitions: 4)
        _ = try await node.registerWorker("gone")
        _ = try await node.beat("gone")
        try store.close()

        store = try openStore()
        node = try makeNode(store: store, clock: clock, partitions: 4)
        _ = try await node.registerWorker("new")
        clock.advance(by: 6_000)
        _ = try await node.beat("new")
        await node.tick()
        let assignments = try await node.beat("new").assignments
        XCTAssertEqual(assignments, (0..<4).map { Assignment(partition: $0, epoch: 2) })
    }

    func testRunTicksUntilCancelled() async throws {
        let clock = ManualClock(start)
        let node = try makeNode(store: try openStore(), clock: clock)
        _ = try await node.registerWorker("w1")
        clock.advance(by: 10_000)
        let running = Task { try await node.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        var state: String?
        while ContinuousClock.now < deadline {
            let status: ClusterStatus = try await node.get(RPCPath.status)
            state = status.workers.first?.state
            if state == "down" { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTAssertEqual(state, "down", "run() should have ticked and expired w1's lease")
        running.cancel()
        try await running.value
    }

    func testBadRequestsAreAnsweredWithWhatToFix() async throws {
        let node = try makeNode(store: try openStore(), clock: ManualClock(start))

        let garbage = await node.handle(HTTPRequest(method: "POST", path: RPCPath.heartbeat, body: Array("{not json".utf8)))
        XCTAssertEqual(garbage.status, 400)
        XCTAssertTrue(garbage.text.contains("body is not a valid HeartbeatRequest"), garbage.text)

        let oldWorker = RegisterRequest(workerID: "w1", address: "h", pid: 1, protocolVersion: 0)
        let mismatch = await node.handle(HTTPRequest(method: "POST", path: RPCPath.register, body: Array(try JSONEncoder().encode(oldWorker))))
        XCTAssertEqual(mismatch.status, 400)
        XCTAssertTrue(mismatch.text.contains("run the same Vigil version"), mismatch.text)

        let wrongMethod = await node.handle(HTTPRequest(method: "GET", path: RPCPath.register))
        XCTAssertEqual(wrongMethod.status, 405)
        XCTAssertEqual(wrongMethod.header("allow"), "POST")

        let unknown = await node.handle(HTTPRequest(method: "GET", path: "/v2/everything"))
        XCTAssertEqual(unknown.status, 404)

        let badLimit = await node.handle(HTTPRequest(method: "GET", path: RPCPath.anomalies, query: ["limit": "0"]))
        XCTAssertEqual(badLimit.status, 400)
        XCTAssertTrue(badLimit.text.contains("limit must be a positive integer"), badLimit.text)

        // Releasing a partition that is not being handed off is refused, not an error.
        _ = try await node.registerWorker("w1")
        _ = try await node.beat("w1")
        let release: ReleaseResponse = try await node.post(RPCPath.release, ReleaseRequest(workerID: "w1", partition: 0, epoch: 1))
        XCTAssertFalse(release.accepted)
        XCTAssertTrue(logs.contains("release refused"))
    }
}

private struct Empty: Codable {}

extension CoordinatorNode {
    /// POST with a query string (the ack endpoint takes `by` there).
    fileprivate func post<Answer: Decodable>(_ path: String, _ body: Empty, query: [String: String], file: StaticString = #filePath, line: UInt = #line) async throws -> Answer {
        let response = await handle(HTTPRequest(method: "POST", path: path, query: query))
        XCTAssertEqual(response.status, 200, "POST \(path): \(response.text)", file: file, line: line)
        return try response.decode(Answer.self)
    }
}
