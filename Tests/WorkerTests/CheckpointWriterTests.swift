import Detection
import Foundation
import Logging
import XCTest

@testable import Worker

/// Checkpoints are encoded on the writer's thread from a frozen copy of the processor: what
/// reaches the outbox is the state at the freeze (not what the consume thread did next), in
/// submission order, with a handoff's release after its checkpoint; a cancelled partition's jobs
/// queue nothing.
final class CheckpointWriterTests: XCTestCase {
    private let config = DetectionConfig()

    private func trade(_ i: Int, symbol: String = "BTCUSDT") -> [UInt8] {
        Array(#"{"e":"trade","s":"\#(symbol)","t":\#(i + 1),"p":"\#(100 + i % 7).5","q":"0.25","T":\#(1_700_000_000_000 + Int64(i) * 250),"m":false}"#.utf8)
    }

    private func processor(trades: Range<Int>) -> PartitionProcessor {
        var processor = PartitionProcessor(partition: 3, config: config)
        var output = ProcessorOutput()
        for i in trades {
            trade(i).withUnsafeBytes { processor.process(offset: Int64(i), payload: $0, into: &output) }
        }
        return processor
    }

    private func drain(_ outbox: Outbox) async -> [OutboxItem] {
        outbox.close()
        var items: [OutboxItem] = []
        while let item = await outbox.next() {
            items.append(item)
            outbox.done(item.partition)
        }
        return items
    }

    func testTheCheckpointIsTheStateAtTheFreezeAndTheReleaseFollowsIt() async throws {
        let outbox = Outbox(capacity: 100)
        let writer = CheckpointWriter(outbox: outbox, logger: Logger(label: "test"))
        var live = processor(trades: 0..<500)
        let atFreeze = live.snapshot()
        writer.submit(.init(workerID: "w1", partition: 3, epoch: 7, frozen: (live, 500), release: false))
        // The consume thread goes on writing to its own copy while the writer encodes.
        var output = ProcessorOutput()
        for i in 500..<900 {
            trade(i).withUnsafeBytes { live.process(offset: Int64(i), payload: $0, into: &output) }
        }
        writer.submit(.init(workerID: "w1", partition: 3, epoch: 7, frozen: (live, 900), release: true))
        writer.finish()

        let items = await drain(outbox)
        guard items.count == 3,
            case .checkpoint(let first) = items[0], case .checkpoint(let last) = items[1], case .release(let release) = items[2]
        else { return XCTFail("expected checkpoint, checkpoint, release; got \(items)") }
        XCTAssertEqual(first.nextOffset, 500)
        XCTAssertEqual(Array(first.state), atFreeze, "the first checkpoint holds the state at its freeze")
        XCTAssertEqual(last.nextOffset, 900)
        XCTAssertEqual(Array(last.state), live.snapshot())
        let restored = try PartitionProcessor(partition: 3, config: config, restoring: Array(first.state))
        XCTAssertEqual(restored.stats.consumed, 500)
        XCTAssertEqual([release.partition, Int32(release.epoch)], [3, 7])
        XCTAssertFalse(writer.isPending(3))
    }

    func testAPartitionStartedAtItsEndWithNothingReadIsReleasedWithoutACheckpoint() async {
        let outbox = Outbox(capacity: 10)
        let writer = CheckpointWriter(outbox: outbox, logger: Logger(label: "test"))
        writer.submit(.init(workerID: "w1", partition: 1, epoch: 2, frozen: nil, release: true))
        writer.finish()
        let items = await drain(outbox)
        guard items.count == 1, case .release(let release) = items[0] else { return XCTFail("expected one release; got \(items)") }
        XCTAssertEqual(release.partition, 1)
    }

    func testCancelledJobsQueueNothingAndLaterEpochsAreUnaffected() async {
        let outbox = Outbox(capacity: 10)
        let writer = CheckpointWriter(outbox: outbox, logger: Logger(label: "test"))
        let state = processor(trades: 0..<50)
        writer.cancel(partition: 4, epoch: 5)
        writer.submit(.init(workerID: "w1", partition: 4, epoch: 5, frozen: (state, 50), release: true))
        writer.submit(.init(workerID: "w1", partition: 4, epoch: 4, frozen: (state, 50), release: false))
        writer.submit(.init(workerID: "w2", partition: 4, epoch: 6, frozen: (state, 50), release: false))
        writer.finish()
        let items = await drain(outbox)
        XCTAssertEqual(items.count, 1, "only the job of the epoch after the cancelled one: \(items)")
        XCTAssertEqual(items.first?.epoch, 6)
    }
}
