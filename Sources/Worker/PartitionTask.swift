import Detection
import Foundation
import Kafka
import Logging
import Protocol

/// One assigned partition: its detection state and what it has produced but not yet handed to
/// the outbox. Owned by the consume thread; never shared.
///
/// Offsets: `expectedOffset` is the next offset the task needs. A record below it is a replay
/// (skipped); a record above it means the broker no longer had the offsets in between (retention
/// moved the log start past them): the range is reported as lost, loudly, and processing goes on.
final class PartitionTask {
    let partition: Int32
    let epoch: Int64
    private(set) var processor: PartitionProcessor
    /// Next offset the task needs; nil when starting from "latest" before the first record.
    private(set) var expectedOffset: Int64?
    /// Where to position the consumer when (re)assigning.
    var seekOffset: Int64 { expectedOffset ?? KafkaOffset.end }
    private(set) var lost: [OffsetRange] = []
    private var pendingLost: [OffsetRange] = []
    private var output = ProcessorOutput()
    private(set) var lastCheckpointAt: ContinuousClock.Instant
    private var lastFlushAt: ContinuousClock.Instant
    static let summaryInterval: Duration = .milliseconds(250)
    static let summaryLimit = 5_000
    private(set) var logEndOffset: Int64 = -1
    /// The processor's stats when the task started (restored from a checkpoint, or zero): the
    /// baseline of what this task, in this process, consumed.
    let startStats: ProcessorStats
    private let startOffset: Int64?
    private let logger: Logger

    init(partition: Int32, epoch: Int64, processor: PartitionProcessor, startOffset: Int64?, now: ContinuousClock.Instant, logger: Logger) {
        self.partition = partition
        self.epoch = epoch
        self.processor = processor
        self.startStats = processor.stats
        self.startOffset = startOffset
        self.expectedOffset = startOffset
        self.lastCheckpointAt = now
        self.lastFlushAt = now
        var logger = logger
        logger[metadataKey: "partition"] = "\(partition)"
        logger[metadataKey: "epoch"] = "\(epoch)"
        self.logger = logger
    }

    func handle(_ record: KafkaRecord) {
        if let expected = expectedOffset {
            if record.offset < expected { return }
            if record.offset > expected { noteLost(expected..<record.offset) }
        }
        processor.process(offset: record.offset, payload: record.value, into: &output)
        expectedOffset = record.offset + 1
    }

    /// Records offsets the broker no longer has, once, and moves past them.
    func noteLost(_ offsets: Range<Int64>) {
        let from = max(offsets.lowerBound, expectedOffset ?? offsets.lowerBound)
        guard offsets.upperBound > from else { return }
        let range = OffsetRange(from: from, to: offsets.upperBound)
        lost.append(range)
        pendingLost.append(range)
        expectedOffset = offsets.upperBound
        logger.error(
            "offsets lost to retention: the broker no longer has them",
            metadata: ["from": "\(range.from)", "to": "\(range.to)", "count": "\(range.to - range.from)"])
    }

    func noteLogEnd(_ offset: Int64) {
        logEndOffset = offset
    }

    /// Records known to wait on the broker or in the consumer queue: the log end last seen minus
    /// the next offset to process (0 when either is unknown).
    var lag: Int64 {
        guard logEndOffset >= 0, let expectedOffset else { return 0 }
        return max(0, logEndOffset - expectedOffset)
    }

    /// Hands what the task produced to the outbox as one report. Anomalies and lost ranges go
    /// at once (they are what operators wait for); window summaries, late events and malformed
    /// records alone wait up to `summaryInterval` to ride in fewer, larger reports, unless
    /// `force` (before a checkpoint, which must follow every report it covers).
    func flush(workerID: String, to outbox: Outbox, now: ContinuousClock.Instant, force: Bool = false) {
        let urgent = !output.anomalies.isEmpty || !pendingLost.isEmpty
        let pending = output.windows.count + output.lateEvents.count + output.malformed.count
        guard urgent || pending > 0 else { return }
        if !force && !urgent && now - lastFlushAt < Self.summaryInterval && pending < Self.summaryLimit { return }
        lastFlushAt = now
        for record in output.malformed {
            logger.warning("malformed record skipped", metadata: ["offset": "\(record.offset)", "reason": "\(record.reason)"])
        }
        outbox.push(.report(ReportRequest(
            workerID: workerID, partition: partition, epoch: epoch, anomalies: output.anomalies,
            windows: output.windows, lateEvents: output.lateEvents, malformed: output.malformed, lost: pendingLost)))
        output.removeAll(keepingCapacity: true)
        pendingLost.removeAll()
    }

    /// Freezes the state at this batch boundary for `CheckpointWriter`: a copy of the processor
    /// (sharing storage until the next write) and the offset to resume from; nil before the first
    /// record of a partition started at its end. Call `flush` first, so that the checkpoint follows
    /// every report it covers in the outbox.
    func freeze(now: ContinuousClock.Instant) -> (processor: PartitionProcessor, nextOffset: Int64)? {
        lastCheckpointAt = now
        guard let next = expectedOffset else { return nil }
        return (processor, next)
    }

    func progress(recordsPerSecond: Double) -> PartitionProgress {
        progress(processor.stats, nextOffset: expectedOffset ?? -1, recordsPerSecond: recordsPerSecond, lost: lost)
    }

    /// The task's progress as it started (`startStats`, nothing lost yet): the metrics' baseline.
    var startProgress: PartitionProgress {
        progress(startStats, nextOffset: startOffset ?? -1, recordsPerSecond: 0, lost: [])
    }

    private func progress(_ stats: ProcessorStats, nextOffset: Int64, recordsPerSecond: Double, lost: [OffsetRange]) -> PartitionProgress {
        PartitionProgress(
            partition: partition, epoch: epoch, nextOffset: nextOffset, logEndOffset: logEndOffset,
            consumed: stats.consumed, windowed: stats.windowed, late: stats.late, malformed: stats.malformed,
            windowsClosed: stats.windowsClosed, anomalies: stats.anomalies, watermarkMs: stats.watermarkMs,
            recordsPerSecond: recordsPerSecond, lost: lost, symbols: stats.symbols)
    }
}
