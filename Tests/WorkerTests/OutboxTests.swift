import Foundation
import Protocol
import XCTest

@testable import Worker

/// The outbox hands out one item per partition at a time, in queue order within a partition,
/// and lets other partitions go meanwhile; reports queued behind a partition's head are merged.
final class OutboxTests: XCTestCase {
    /// A report standing for `from..<to` (carried as a lost range so merges are visible).
    private func report(_ partition: Int32, _ from: Int64, _ to: Int64, epoch: Int64 = 1) -> OutboxItem {
        .report(ReportRequest(workerID: "w1", partition: partition, epoch: epoch, lost: [OffsetRange(from: from, to: to)]))
    }

    private func checkpoint(_ partition: Int32, next: Int64) -> OutboxItem {
        .checkpoint(CheckpointRequest(workerID: "w1", partition: partition, epoch: 1, nextOffset: next, state: Data(), watermarkMs: 0, durationMs: 0))
    }

    private func describe(_ item: OutboxItem?) -> String {
        switch item {
        case .report(let r)?: "report p\(r.partition) \(r.lost.map { "\($0.from)-\($0.to)" }.joined(separator: ","))"
        case .checkpoint(let c)?: "checkpoint p\(c.partition) next=\(c.nextOffset)"
        case .release(let r)?: "release p\(r.partition)"
        case nil: "nil"
        }
    }

    func testPartitionsGoTogetherAndEachPartitionInOrder() async {
        let outbox = Outbox(capacity: 10)
        outbox.push(report(0, 0, 5))
        outbox.push(checkpoint(0, next: 10))
        outbox.push(report(1, 0, 5))
        outbox.push(report(0, 10, 15))

        // Partition 0's report and partition 1's report are both handed out before either is done.
        let first = await outbox.next()
        let second = await outbox.next()
        XCTAssertEqual(describe(first), "report p0 0-5")
        XCTAssertEqual(describe(second), "report p1 0-5")
        XCTAssertFalse(outbox.isIdle)

        // Partition 0's checkpoint waits for its report to be done; the report behind the
        // checkpoint is not merged across it.
        let waiting = Task { await outbox.next() }
        try? await Task.sleep(for: .milliseconds(50))
        outbox.done(1)
        try? await Task.sleep(for: .milliseconds(50))
        outbox.done(0)
        let third = await waiting.value
        XCTAssertEqual(describe(third), "checkpoint p0 next=10")
        outbox.done(0)
        let fourth = await outbox.next()
        XCTAssertEqual(describe(fourth), "report p0 10-15")
        outbox.done(0)
        XCTAssertTrue(outbox.isIdle)
    }

    func testReportsQueuedBehindAPartitionsHeadAreMerged() async {
        let outbox = Outbox(capacity: 10)
        outbox.push(report(2, 0, 5))
        outbox.push(report(3, 0, 5))
        outbox.push(report(2, 5, 9))
        outbox.push(report(2, 9, 12, epoch: 2))

        let first = await outbox.next()
        XCTAssertEqual(describe(first), "report p2 0-5,5-9", "the same epoch's reports merge into one")
        let second = await outbox.next()
        XCTAssertEqual(describe(second), "report p3 0-5")
        outbox.done(2)
        let third = await outbox.next()
        XCTAssertEqual(describe(third), "report p2 9-12", "a new epoch's report is not merged into the old one")
    }

    func testCloseEndsOnlyOnceTheQueueIsEmpty() async {
        let outbox = Outbox(capacity: 10)
        outbox.push(report(0, 0, 5))
        outbox.push(checkpoint(0, next: 4))
        _ = await outbox.next()
        outbox.close()
        // The checkpoint is still queued behind the report in flight: next() waits for it.
        let waiting = Task { await outbox.next() }
        try? await Task.sleep(for: .milliseconds(50))
        outbox.done(0)
        let last = await waiting.value
        XCTAssertEqual(describe(last), "checkpoint p0 next=4")
        let end = await outbox.next()
        XCTAssertNil(end)
    }

    func testDiscardingTheRestWakesAClosedSender() async {
        let outbox = Outbox(capacity: 10)
        outbox.push(report(0, 0, 5))
        outbox.push(report(1, 0, 5))
        outbox.push(checkpoint(0, next: 9))
        _ = await outbox.next()
        _ = await outbox.next()
        outbox.close()
        let waiting = Task { await outbox.next() }
        try? await Task.sleep(for: .milliseconds(50))
        outbox.discardAll()
        let end = await waiting.value
        XCTAssertNil(end)
    }
}
