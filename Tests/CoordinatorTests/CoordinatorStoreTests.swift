import Coordinator
import Detection
import Foundation
import Protocol
import XCTest

final class CoordinatorStoreTests: CoordinatorTestCase {
    /// Partition 0 owned by w1 at `epoch`, partition 1 owned by w2 at epoch 1.
    private func seedAssignments(_ store: CoordinatorStore, epoch: Int64 = 1) throws {
        try store.saveAssignments([
            PartitionAssignment(partition: 0, owner: "w1", epoch: epoch, state: .active),
            PartitionAssignment(partition: 1, owner: "w2", epoch: 1, state: .active),
        ], changes: [], now: 0)
    }

    func testDuplicateAnomalyIDsAreInsertedOnceAndCounted() async throws {
        let store = try openStore()
        try seedAssignments(store)
        let a = anomaly("BTCUSDT", .priceShock, .high, windowStartMs: 1_723_161_600_000)
        let b = anomaly("ETHUSDT", .volumeSpike, .medium, windowStartMs: 1_723_161_600_000)
        let c = anomaly("BTCUSDT", .flashCrash, .critical, windowStartMs: 1_723_161_620_000)

        let first = try await store.storeReport(ReportRequest(workerID: "w1", partition: 0, epoch: 1, anomalies: [a, b]), now: 10)
        XCTAssertEqual(first, .accepted([a, b]))

        // A replay (same ids, even with other fields changed) adds only what is new.
        var replayedA = a
        replayedA.description = "replayed"
        let second = try await store.storeReport(ReportRequest(workerID: "w1", partition: 0, epoch: 1, anomalies: [replayedA, b, c, c]), now: 20)
        XCTAssertEqual(second, .accepted([c]))

        let count = try await store.anomalyCount()
        XCTAssertEqual(count, 3)
        let storedA = try await store.anomaly(id: a.id)
        XCTAssertEqual(storedA?.anomaly, a, "the first insert wins")
        XCTAssertEqual(storedA?.storedAtMs, 10)
    }

    func testStaleEpochAndNonOwnerCheckpointsAreRejected() async throws {
        let store = try openStore()
        try seedAssignments(store, epoch: 2)
        func checkpoint(_ worker: String, epoch: Int64, offset: Int64, partition: Int32 = 0) -> CheckpointRequest {
            CheckpointRequest(workerID: worker, partition: partition, epoch: epoch, nextOffset: offset, state: Data("state@\(offset)".utf8), watermarkMs: 1_000 + offset, durationMs: 0.5)
        }

        guard case .rejected(let stale) = try await store.storeCheckpoint(checkpoint("w1", epoch: 1, offset: 10), now: 1) else {
            return XCTFail("a stale epoch was accepted")
        }
        XCTAssertEqual(stale.description, "stale epoch 1 for partition 0: current epoch is 2; stop the task")
        guard case .rejected(let other) = try await store.storeCheckpoint(checkpoint("w2", epoch: 2, offset: 10), now: 1) else {
            return XCTFail("a non-owner was accepted")
        }
        XCTAssertEqual(other.description, "partition 0 is owned by w1 at epoch 2, not by w2 at epoch 2; stop the task")
        guard case .rejected = try await store.storeCheckpoint(checkpoint("w1", epoch: 2, offset: 10, partition: 7), now: 1) else {
            return XCTFail("a checkpoint for an unknown partition was accepted")
        }
        var counts = try await store.counts()
        XCTAssertEqual(counts.checkpoints, 0)

        guard case .accepted(let one) = try await store.storeCheckpoint(checkpoint("w1", epoch: 2, offset: 10), now: 5),
              case .accepted(let two) = try await store.storeCheckpoint(checkpoint("w1", epoch: 2, offset: 25), now: 6)
        else { return XCTFail("the owner's checkpoints were rejected") }
        XCTAssertEqual([one.checkpointID, two.checkpointID], [1, 2])
        counts = try await store.counts()
        XCTAssertEqual(counts.checkpoints, 1, "only the latest is kept")

        guard case .accepted(let fetched?) = try await store.fetchCheckpoint(partition: 0, worker: "w1", epoch: 2) else {
            return XCTFail("the owner could not fetch its checkpoint")
        }
        XCTAssertEqual(fetched.summary.nextOffset, 25)
        XCTAssertEqual(fetched.summary.watermarkMs, 1_025)
        XCTAssertEqual(fetched.state, Data("state@25".utf8))
        guard case .rejected = try await store.fetchCheckpoint(partition: 0, worker: "w1", epoch: 1) else {
            return XCTFail("a stale fetch was accepted")
        }
        guard case .accepted(nil) = try await store.fetchCheckpoint(partition: 1, worker: "w2", epoch: 1) else {
            return XCTFail("a partition without checkpoint should answer none")
        }
    }

    func testStaleReportWritesNothingAtAll() async throws {
        let store = try openStore()
        try seedAssignments(store, epoch: 3)
        let report = ReportRequest(
            workerID: "w1", partition: 0, epoch: 2, anomalies: [anomaly("BTCUSDT", .priceShock, .high, windowStartMs: 0)],
            windows: [window("BTCUSDT", startMs: 0)], lateEvents: [LateEvent(partition: 0, offset: 5, symbol: "BTCUSDT", eventTimeMs: 1, watermarkMs: 9)],
            malformed: [MalformedRecord(partition: 0, offset: 6, reason: "not JSON", excerpt: "{")], lost: [OffsetRange(from: 0, to: 4)])
        guard case .rejected = try await store.storeReport(report, now: 1) else { return XCTFail("stale report accepted") }
        let counts = try await store.counts()
        XCTAssertEqual(counts, StoreCounts())
    }

    func testAReportIsOneTransaction() async throws {
        let store = try openStore()
        try seedAssignments(store)
        // A large report, written while a reader polls: every snapshot sees all of it or none of it.
        let windows = (0..<20_000).map { window("BTCUSDT", startMs: Int64($0) * 20_000) }
        let anomalies = (0..<2_000).map { anomaly("BTCUSDT", .volumeSpike, .low, windowStartMs: Int64($0) * 20_000) }
        let late = (0..<2_000).map { LateEvent(partition: 0, offset: Int64($0), symbol: "BTCUSDT", eventTimeMs: 0, watermarkMs: 1) }
        let report = ReportRequest(workerID: "w1", partition: 0, epoch: 1, anomalies: anomalies, windows: windows, lateEvents: late)
        let writer = Task { try await store.storeReport(report, now: 1) }

        let full = StoreCounts(anomalies: 2_000, windows: 20_000, lateEvents: 2_000)
        var observations = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let counts = try await store.counts()
            observations += 1
            XCTAssertTrue(counts == StoreCounts() || counts == full, "a reader saw part of a report: \(counts)")
            if counts == full { break }
        }
        guard case .accepted(let inserted) = try await writer.value else { return XCTFail("report rejected") }
        XCTAssertEqual(inserted.count, 2_000)
        XCTAssertGreaterThan(observations, 0)
    }

    func testReportStoresEveryPartOnce() async throws {
        let store = try openStore()
        try seedAssignments(store)
        let report = ReportRequest(
            workerID: "w1", partition: 0, epoch: 1, windows: [window("BTCUSDT", startMs: 0), window("BTCUSDT", startMs: 20_000)],
            lateEvents: [LateEvent(partition: 0, offset: 5, symbol: "BTCUSDT", eventTimeMs: 1, watermarkMs: 9)],
            malformed: [MalformedRecord(partition: 0, offset: 6, reason: "missing field p", excerpt: #"{"e":"trade"}"#)],
            lost: [OffsetRange(from: 0, to: 1_520)])
        _ = try await store.storeReport(report, now: 1)
        _ = try await store.storeReport(report, now: 2)

        let windows = try await store.windows(symbol: "BTCUSDT")
        XCTAssertEqual(windows, report.windows)
        let late = try await store.lateEvents(partition: 0)
        XCTAssertEqual(late, report.lateEvents)
        let malformed = try await store.malformedRecords(partition: 0)
        XCTAssertEqual(malformed, report.malformed)
        XCTAssertEqual(try store.loadLostRanges(), [0: [OffsetRange(from: 0, to: 1_520)]])
    }

    func testNaNFeaturesRoundTrip() async throws {
        let store = try openStore()
        try seedAssignments(store)
        var flat = window("BTCUSDT", startMs: 0)
        flat.volatility = .nan
        var odd = anomaly("BTCUSDT", .isolationOutlier, .low, windowStartMs: 0)
        odd.expected = .nan
        odd.scores["isolation"] = .infinity
        _ = try await store.storeReport(ReportRequest(workerID: "w1", partition: 0, epoch: 1, anomalies: [odd], windows: [flat]), now: 1)
        let windows = try await store.windows(symbol: "BTCUSDT")
        XCTAssertTrue(windows.first?.volatility.isNaN ?? false)
        let stored = try await store.anomaly(id: odd.id)
        XCTAssertTrue(stored?.anomaly.expected.isNaN ?? false)
        XCTAssertEqual(stored?.anomaly.scores["isolation"], .infinity)
    }

    func testAcknowledgeKeepsTheFirstAcknowledgement() async throws {
        let store = try openStore()
        try seedAssignments(store)
        let a = anomaly("BTCUSDT", .priceShock, .high, windowStartMs: 0)
        _ = try await store.storeReport(ReportRequest(workerID: "w1", partition: 0, epoch: 1, anomalies: [a]), now: 1)
        let first = try await store.acknowledge(id: a.id, by: "alice", now: 100)
        let second = try await store.acknowledge(id: a.id, by: "bob", now: 200)
        XCTAssertEqual(first?.acknowledgedBy, "alice")
        XCTAssertEqual(second?.acknowledgedBy, "alice")
        XCTAssertEqual(second?.acknowledgedAtMs, 100)
        let missing = try await store.acknowledge(id: "0000000000000000", by: "alice", now: 100)
        XCTAssertNil(missing)
    }

    func testReopeningTheFileKeepsAssignmentsCheckpointsAnomaliesAndWorkers() async throws {
        var store = try openStore()
        let rows = [
            PartitionAssignment(partition: 0, owner: "w1", epoch: 4, state: .active),
            PartitionAssignment(partition: 1, owner: "w1", epoch: 2, state: .releasing, target: "w2", releasingSinceMs: 900),
            PartitionAssignment(partition: 2, owner: nil, epoch: 7, state: .unassigned),
        ]
        try store.saveAssignments(rows, changes: [AssignmentChange(kind: .handoffStarted, partition: 1, from: "w1", to: "w2", epoch: 2)], now: 900)
        try store.saveWorker(StoredWorker(id: "w1", address: "10.0.0.1", pid: 77, state: "up", registeredAtMs: 500), event: "joined", now: 500)
        let a = anomaly("ETHUSDT", .pumpAndDump, .critical, windowStartMs: 40_000)
        _ = try await store.storeReport(ReportRequest(workerID: "w1", partition: 0, epoch: 4, anomalies: [a]), now: 1_000)
        _ = try await store.storeCheckpoint(CheckpointRequest(workerID: "w1", partition: 0, epoch: 4, nextOffset: 1_234, state: Data([1, 2, 3]), watermarkMs: 99, durationMs: 1), now: 1_001)
        try store.close()

        store = try openStore()
        XCTAssertEqual(try store.loadAssignments(), rows)
        XCTAssertEqual(try store.loadWorkers(), [StoredWorker(id: "w1", address: "10.0.0.1", pid: 77, state: "up", registeredAtMs: 500)])
        XCTAssertEqual(try store.loadCheckpointSummaries().map(\.nextOffset), [1_234])
        guard case .accepted(let checkpoint?) = try await store.fetchCheckpoint(partition: 0, worker: "w1", epoch: 4) else {
            return XCTFail("checkpoint lost across reopen")
        }
        XCTAssertEqual(checkpoint.state, Data([1, 2, 3]))
        let stored = try await store.anomalies(AnomalyQuery())
        XCTAssertEqual(stored.map(\.anomaly), [a])
        let events = try await store.workerEvents()
        XCTAssertEqual(events.map(\.event), ["joined"])
    }

    func testRetentionDeletesByStorageAge() async throws {
        let store = try openStore()
        try seedAssignments(store)
        let old = ReportRequest(
            workerID: "w1", partition: 0, epoch: 1, anomalies: [anomaly("BTCUSDT", .priceShock, .high, windowStartMs: 0)],
            windows: [window("BTCUSDT", startMs: 0)], lateEvents: [LateEvent(partition: 0, offset: 1, symbol: "BTCUSDT", eventTimeMs: 0, watermarkMs: 1)])
        let recent = ReportRequest(
            workerID: "w1", partition: 0, epoch: 1, anomalies: [anomaly("BTCUSDT", .priceShock, .high, windowStartMs: 20_000)],
            windows: [window("BTCUSDT", startMs: 20_000)])
        _ = try await store.storeReport(old, now: 1_000)
        _ = try await store.storeReport(recent, now: 5_000)

        let policy = RetentionPolicy(windowsMs: 2_000, anomaliesMs: 3_000)
        // At 5_500 windows stored before 3_500 and anomalies stored before 2_500 go.
        let deleted = try await store.applyRetention(policy, now: 5_500)
        XCTAssertEqual(deleted.windows, 1)
        XCTAssertEqual(deleted.lateEvents, 1)
        XCTAssertEqual(deleted.anomalies, 1)
        let counts = try await store.counts()
        XCTAssertEqual(counts, StoreCounts(anomalies: 1, windows: 1))
        let windows = try await store.windows(symbol: "BTCUSDT")
        XCTAssertEqual(windows.map(\.startMs), [20_000])

        let again = try await store.applyRetention(policy, now: 5_500)
        XCTAssertEqual(again.total, 0)
    }

    func testOpeningInAMissingDirectorySaysWhatToFix() {
        XCTAssertThrowsError(try CoordinatorStore(path: directory.appendingPathComponent("nope/coordinator.sqlite").path)) { error in
            XCTAssertTrue("\(error)".contains("check that the directory exists and is writable"), "\(error)")
        }
    }
}
