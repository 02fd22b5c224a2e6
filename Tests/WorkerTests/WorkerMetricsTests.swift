import Logging
import Prometheus
import Protocol
import XCTest

@testable import Worker

/// The worker's counters count what its own process consumed: a task is counted from the stats it
/// started with (restored from another owner's checkpoint, or zero) to its final stats, whether
/// or not a heartbeat listed it before it stopped.
final class WorkerMetricsTests: XCTestCase {
    private func makeMetrics() -> WorkerMetrics {
        WorkerMetrics(logger: Logger(label: "test"), wallClock: { 1_000_000 })
    }

    private func progress(
        _ partition: Int32, epoch: Int64, consumed: Int64, late: Int64 = 0, malformed: Int64 = 0,
        windowsClosed: Int64 = 0, anomalies: Int64 = 0, lost: [OffsetRange] = []
    ) -> PartitionProgress {
        PartitionProgress(
            partition: partition, epoch: epoch, nextOffset: consumed, consumed: consumed,
            windowed: consumed - late - malformed, late: late, malformed: malformed,
            windowsClosed: windowsClosed, anomalies: anomalies, lost: lost)
    }

    private func heartbeat(_ metrics: WorkerMetrics, _ partitions: [PartitionProgress], _ events: [PartitionTaskEvent] = []) {
        metrics.heartbeat(HeartbeatRequest(workerID: "w", partitions: partitions), taskEvents: events)
    }

    /// The sum of a metric family's samples in `/metrics`, optionally of one partition only.
    private func total(_ metrics: WorkerMetrics, _ family: String, partition: Int32? = nil) -> Int64 {
        let prefix = partition.map { "\(family){partition=\"\($0)\"}" } ?? family
        return metrics.render().split(separator: "\n")
            .filter { $0.hasPrefix(prefix + " ") || (partition == nil && $0.hasPrefix(family + "{")) }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            .reduce(0) { $0 + Int64($1) }
    }

    private func consumed(_ metrics: WorkerMetrics, partition: Int32? = nil) -> Int64 {
        total(metrics, "vigil_worker_records_consumed_total", partition: partition)
    }

    func testARestoredPartitionCountsOnlyWhatThisProcessConsumed() {
        let metrics = makeMetrics()
        let restored = progress(3, epoch: 7, consumed: 1_000, late: 40, malformed: 10, windowsClosed: 90, anomalies: 5)
        heartbeat(metrics, [restored], [.started(restored)])
        XCTAssertEqual(consumed(metrics, partition: 3), 0, "the restored 1000 records were the previous owner's")
        XCTAssertEqual(total(metrics, "vigil_worker_windows_closed_total"), 0)
        XCTAssertEqual(total(metrics, "vigil_worker_anomalies_detected_total"), 0)

        heartbeat(metrics, [progress(3, epoch: 7, consumed: 1_500, late: 50, malformed: 12, windowsClosed: 120, anomalies: 8)])
        XCTAssertEqual(consumed(metrics, partition: 3), 500)
        XCTAssertEqual(total(metrics, "vigil_worker_records_processed_total"), (1_500 - 62) - (1_000 - 50))
        XCTAssertEqual(total(metrics, "vigil_worker_records_late_total"), 10)
        XCTAssertEqual(total(metrics, "vigil_worker_records_malformed_total"), 2)
        XCTAssertEqual(total(metrics, "vigil_worker_windows_closed_total"), 30)
        XCTAssertEqual(total(metrics, "vigil_worker_anomalies_detected_total"), 3)
    }

    func testARestoredPartitionFirstSeenAfterItProgressedCountsFromItsStart() {
        let metrics = makeMetrics()
        // Started and already past its baseline by the first heartbeat that lists it.
        heartbeat(metrics, [progress(0, epoch: 2, consumed: 1_200)], [.started(progress(0, epoch: 2, consumed: 1_000))])
        XCTAssertEqual(consumed(metrics), 200)
    }

    func testATaskStoppedBetweenHeartbeatsHasItsLastRecordsCounted() {
        let metrics = makeMetrics()
        heartbeat(metrics, [progress(1, epoch: 4, consumed: 300)], [.started(progress(1, epoch: 4, consumed: 0))])
        XCTAssertEqual(consumed(metrics), 300)
        // Handed off: the next heartbeat no longer lists it, but its final stats come with it.
        heartbeat(metrics, [], [.stopped(progress(1, epoch: 4, consumed: 450, lost: [OffsetRange(from: 310, to: 320)]))])
        XCTAssertEqual(consumed(metrics, partition: 1), 450)
        XCTAssertEqual(total(metrics, "vigil_worker_offsets_lost_total"), 10)
        heartbeat(metrics, [])
        XCTAssertEqual(consumed(metrics), 450, "a stopped task is counted once")
    }

    func testATaskStartedAndStoppedBetweenHeartbeatsIsCounted() {
        let metrics = makeMetrics()
        heartbeat(metrics, [], [.started(progress(5, epoch: 1, consumed: 800)), .stopped(progress(5, epoch: 1, consumed: 870))])
        XCTAssertEqual(consumed(metrics, partition: 5), 70)
    }

    func testAPartitionThatLeavesAndReturnsWithANewEpochCountsFromItsNewBaseline() {
        let metrics = makeMetrics()
        heartbeat(metrics, [progress(2, epoch: 1, consumed: 200)], [.started(progress(2, epoch: 1, consumed: 0))])
        heartbeat(metrics, [], [.stopped(progress(2, epoch: 1, consumed: 250))])
        XCTAssertEqual(consumed(metrics, partition: 2), 250)
        // Another worker took it from offset 250 to 900; it comes back under epoch 3.
        heartbeat(metrics, [progress(2, epoch: 3, consumed: 900)], [.started(progress(2, epoch: 3, consumed: 900))])
        XCTAssertEqual(consumed(metrics, partition: 2), 250)
        heartbeat(metrics, [progress(2, epoch: 3, consumed: 1_000)])
        XCTAssertEqual(consumed(metrics, partition: 2), 350)
    }

    func testAReplacedTaskWithTheSameEpochStartsFromItsNewBaseline() {
        let metrics = makeMetrics()
        heartbeat(metrics, [progress(0, epoch: 9, consumed: 100)], [.started(progress(0, epoch: 9, consumed: 0))])
        // Replaced by a task restored from a checkpoint at 80 (the consume loop reports the old one's end first).
        heartbeat(
            metrics, [progress(0, epoch: 9, consumed: 130)],
            [.stopped(progress(0, epoch: 9, consumed: 120)), .started(progress(0, epoch: 9, consumed: 80))])
        XCTAssertEqual(consumed(metrics), 120 + 50, "both tasks' records, re-processed ones included")
    }

    func testCountersOfTwoWorkersHandingAPartitionOffAddUpToTheRecordsConsumed() {
        let a = makeMetrics()
        let b = makeMetrics()
        // Partition 0 starts on A from nothing; partition 1 starts on B from nothing.
        heartbeat(a, [progress(0, epoch: 1, consumed: 400)], [.started(progress(0, epoch: 1, consumed: 0))])
        heartbeat(b, [progress(1, epoch: 1, consumed: 100)], [.started(progress(1, epoch: 1, consumed: 0))])
        // A hands partition 0 off at 600 (final checkpoint at 600); B restores it and finishes the topic.
        heartbeat(a, [], [.stopped(progress(0, epoch: 1, consumed: 600))])
        heartbeat(b, [progress(0, epoch: 2, consumed: 650), progress(1, epoch: 1, consumed: 300)], [.started(progress(0, epoch: 2, consumed: 600))])
        heartbeat(b, [progress(0, epoch: 2, consumed: 1_000), progress(1, epoch: 1, consumed: 500)])
        XCTAssertEqual(consumed(a) + consumed(b), 1_000 + 500, "every record of the topic, once")
        XCTAssertEqual(consumed(a, partition: 0) + consumed(b, partition: 0), 1_000)

        // B loses its lease at 1_100 on partition 1 (last checkpoint at 500): A re-processes 500..<1_100 and goes on to 1_200.
        heartbeat(b, [], [.stopped(progress(1, epoch: 1, consumed: 1_100))])
        heartbeat(a, [progress(1, epoch: 5, consumed: 1_200)], [.started(progress(1, epoch: 5, consumed: 500))])
        XCTAssertEqual(consumed(a, partition: 1) + consumed(b, partition: 1), 1_100 + 700, "records processed twice count twice")
    }

    func testAPartitionWithoutAReportedStartIsCountedFromZero() {
        let metrics = makeMetrics()
        heartbeat(metrics, [progress(0, epoch: 1, consumed: 40)])
        heartbeat(metrics, [progress(0, epoch: 1, consumed: 90)])
        XCTAssertEqual(consumed(metrics), 90)
    }
}
