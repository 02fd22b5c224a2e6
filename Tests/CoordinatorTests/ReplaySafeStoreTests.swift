@testable import Coordinator
import Detection
import Foundation
import Protocol
import XCTest

/// After a failover a partition replays from its checkpoint, so its reports arrive again (and a
/// loss may be reported again with other bounds): the store must keep one row of each.
final class ReplaySafeStoreTests: CoordinatorTestCase {
    private func seed(_ store: CoordinatorStore) throws {
        try store.saveAssignments([PartitionAssignment(partition: 0, owner: "w1", epoch: 1, state: .active)], changes: [], now: 0)
    }

    func testAReplayedWindowIsUpsertedOnceAndKeepsItsFirstStoreTime() async throws {
        let store = try openStore()
        try seed(store)
        let first = window("BTCUSDT", startMs: 0)
        _ = try await store.storeReport(ReportRequest(workerID: "w1", partition: 0, epoch: 1, windows: [first]), now: 10)
        // The replay after a restore from a checkpoint taken before this window closed.
        var replayed = first
        replayed.count += 3  // e.g. offsets the first owner never got (lost to retention) were there this time
        _ = try await store.storeReport(ReportRequest(workerID: "w1", partition: 0, epoch: 1, windows: [replayed, replayed]), now: 20)

        let windows = try await store.windows(symbol: "BTCUSDT")
        XCTAssertEqual(windows, [replayed], "one row per (symbol, start), with the latest values")
        let counts = try await store.counts()
        XCTAssertEqual(counts.windows, 1)
        let deleted = try await store.applyRetention(RetentionPolicy(windowsMs: 15, anomaliesMs: 1_000), now: 26)
        XCTAssertEqual(deleted.windows, 1, "retention counts from the first store (10), not the replay (20)")
    }

    func testLateEventsAndMalformedRecordsOfAReplayAreStoredOnce() async throws {
        let store = try openStore()
        try seed(store)
        let late = LateEvent(partition: 0, offset: 7, symbol: "ETHUSDT", eventTimeMs: 1, watermarkMs: 50)
        let bad = MalformedRecord(partition: 0, offset: 8, reason: "missing field T", excerpt: "{}")
        for now in [Int64(1), 2, 3] {
            _ = try await store.storeReport(ReportRequest(workerID: "w1", partition: 0, epoch: 1, lateEvents: [late], malformed: [bad]), now: now)
        }
        let counts = try await store.counts()
        XCTAssertEqual(counts.lateEvents, 1)
        XCTAssertEqual(counts.malformedRecords, 1)
    }

    func testALossReportedAgainWithOtherBoundsStoresOnlyTheNewOffsets() async throws {
        let store = try openStore()
        try seed(store)
        _ = try await store.storeReport(ReportRequest(workerID: "w1", partition: 0, epoch: 1, lost: [OffsetRange(from: 100, to: 900)]), now: 1)
        // The same loss again (a replay), then a new owner restoring an older checkpoint sees a wider one.
        _ = try await store.storeReport(ReportRequest(workerID: "w1", partition: 0, epoch: 1, lost: [OffsetRange(from: 100, to: 900)]), now: 2)
        try await store.recordLostRanges(partition: 0, ranges: [OffsetRange(from: 50, to: 1_200)], worker: "w2", epoch: 2, now: 3)

        XCTAssertEqual(try store.loadLostRanges(), [0: [OffsetRange(from: 50, to: 100), OffsetRange(from: 100, to: 900), OffsetRange(from: 900, to: 1_200)]])
        XCTAssertEqual(OffsetRanges.union(try store.loadLostRanges()[0] ?? []), [OffsetRange(from: 50, to: 1_200)])
    }

    func testTheNodeShowsAndLogsALossOnceHoweverOftenItIsReported() async throws {
        let clock = ManualClock(1_723_161_600_000)
        let store = try openStore()
        let node = try makeNode(store: store, clock: clock, partitions: 1)
        _ = try await node.registerWorker("w1")
        let owned = try await node.beat("w1")
        let assignment = try XCTUnwrap(owned.assignments.first)
        for lost in [[OffsetRange(from: 0, to: 500)], [OffsetRange(from: 0, to: 500)], [OffsetRange(from: 200, to: 800)]] {
            let progress = PartitionProgress(partition: 0, epoch: assignment.epoch, nextOffset: 800, lost: lost)
            let _: HeartbeatResponse = try await node.post(RPCPath.heartbeat, HeartbeatRequest(workerID: "w1", partitions: [progress]))
        }
        let status: ClusterStatus = try await node.get(RPCPath.status)
        XCTAssertEqual(status.partitions[0].lost, [OffsetRange(from: 0, to: 800)])
        XCTAssertEqual(status.problems, ["partition 0 lost offsets 0..800 to retention (800 records never processed)"])
        XCTAssertEqual(logs.all.filter { $0.contains("partition lost offsets to retention") }.count, 2, "0..500 once, then only 500..800")

        let restarted = try makeNode(store: store, clock: clock, partitions: 1)
        let reloaded: ClusterStatus = try await restarted.get(RPCPath.status)
        XCTAssertEqual(reloaded.partitions[0].lost, [OffsetRange(from: 0, to: 800)], "stored pieces reload as one range")
    }
}

final class OffsetRangesTests: XCTestCase {
    private func r(_ from: Int64, _ to: Int64) -> OffsetRange { OffsetRange(from: from, to: to) }

    func testSubtractingLeavesTheUncoveredPiecesInOrder() {
        XCTAssertEqual(OffsetRanges.subtracting(r(0, 100), []), [r(0, 100)])
        XCTAssertEqual(OffsetRanges.subtracting(r(0, 100), [r(0, 100)]), [])
        XCTAssertEqual(OffsetRanges.subtracting(r(10, 20), [r(0, 100)]), [])
        XCTAssertEqual(OffsetRanges.subtracting(r(0, 100), [r(20, 30), r(50, 60)]), [r(0, 20), r(30, 50), r(60, 100)])
        XCTAssertEqual(OffsetRanges.subtracting(r(0, 100), [r(60, 200), r(-5, 10)]), [r(10, 60)])
        XCTAssertEqual(OffsetRanges.subtracting(r(0, 100), [r(100, 200)]), [r(0, 100)], "ranges are half-open")
        XCTAssertEqual(OffsetRanges.subtracting(r(5, 5), []), [], "an empty range has nothing to add")
    }

    func testUnionSortsMergesOverlappingAndAdjacentRangesAndDropsEmptyOnes() {
        XCTAssertEqual(OffsetRanges.union([r(50, 60), r(0, 10), r(10, 20), r(15, 30), r(7, 7)]), [r(0, 30), r(50, 60)])
        XCTAssertEqual(OffsetRanges.union([]), [])
    }
}
