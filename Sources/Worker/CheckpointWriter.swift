import DequeModule
import Detection
import Foundation
import Kafka
import Logging
import Protocol

/// Encodes checkpoints off the consume thread, so that taking one does not pause processing.
///
/// The consume thread freezes a partition at a batch boundary by copying its `PartitionProcessor`.
/// The processor is a value: the copy shares its storage until the next write, so freezing costs
/// microseconds and the first trades after it copy only what they change (Flink's asynchronous
/// snapshots, with copy-on-write standing in for its state backend). This writer's thread encodes
/// the copy and queues the checkpoint in the outbox.
///
/// Order: the reports a checkpoint covers were queued before the freeze, so the checkpoint still
/// follows them. Reports of later records may be queued before it; that is safe, because a
/// restore replays from the checkpoint's offset and storing a report twice changes nothing.
/// Jobs run one at a time in order, so a partition's final checkpoint and its release follow
/// any periodic checkpoint of it still being encoded.
final class CheckpointWriter: @unchecked Sendable {
    struct Job {
        var workerID: String
        var partition: Int32
        var epoch: Int64
        /// The frozen state; nil when the partition has not read a record yet (nothing to save).
        var frozen: (processor: PartitionProcessor, nextOffset: Int64)?
        /// Queue a release after the checkpoint (a handoff).
        var release: Bool
    }

    private let outbox: Outbox
    private let logger: Logger
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs = Deque<Job>()
    private var busy = false
    private var running = true
    private var finished = false
    /// Partitions with a job queued or running.
    private var pending: [Int32: Int] = [:]
    /// Per partition, the highest epoch whose writes were cancelled (the lease is gone).
    private var cancelledThrough: [Int32: Int64] = [:]

    init(outbox: Outbox, logger: Logger) {
        self.outbox = outbox
        self.logger = logger
        Thread.start(named: "vigil-checkpt") { [self] in run() }
    }

    func submit(_ job: Job) {
        condition.lock()
        jobs.append(job)
        pending[job.partition, default: 0] += 1
        condition.broadcast()
        condition.unlock()
    }

    /// Whether a checkpoint of `partition` is still queued or being encoded.
    func isPending(_ partition: Int32) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return pending[partition] != nil
    }

    /// Drops the queued and running jobs of `partition` up to `epoch`: nothing of them reaches
    /// the outbox after this returns (call it before discarding the partition's outbox items).
    func cancel(partition: Int32, epoch: Int64) {
        condition.lock()
        cancelledThrough[partition] = max(cancelledThrough[partition] ?? .min, epoch)
        condition.unlock()
    }

    /// Waits until every job submitted so far is in the outbox (or dropped), then stops the thread.
    func finish() {
        condition.lock()
        while !jobs.isEmpty || busy { condition.wait() }
        running = false
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty && running { condition.wait() }
            guard let job = jobs.popFirst() else {
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            busy = true
            let skip = isCancelled(job)
            condition.unlock()

            let checkpoint = skip ? nil : encode(job)

            condition.lock()
            // Checked again under the lock `cancel` takes: a job cancelled while it was being
            // encoded queues nothing.
            if !isCancelled(job) {
                if let checkpoint { outbox.push(.checkpoint(checkpoint)) }
                if job.release { outbox.push(.release(ReleaseRequest(workerID: job.workerID, partition: job.partition, epoch: job.epoch))) }
            }
            pending[job.partition, default: 1] -= 1
            if pending[job.partition] == 0 { pending[job.partition] = nil }
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }

    private func isCancelled(_ job: Job) -> Bool {
        job.epoch <= cancelledThrough[job.partition] ?? .min
    }

    private func encode(_ job: Job) -> CheckpointRequest? {
        guard let frozen = job.frozen else { return nil }
        let started = ContinuousClock.now
        let state = Data(frozen.processor.snapshot())
        let ms = (ContinuousClock.now - started).inSeconds * 1_000
        logger.debug("checkpoint taken", metadata: [
            "partition": "\(job.partition)", "epoch": "\(job.epoch)", "next_offset": "\(frozen.nextOffset)",
            "bytes": "\(state.count)", "duration.ms": "\(String(format: "%.3f", ms))",
        ])
        return CheckpointRequest(
            workerID: job.workerID, partition: job.partition, epoch: job.epoch, nextOffset: frozen.nextOffset,
            state: state, watermarkMs: frozen.processor.stats.watermarkMs, durationMs: ms)
    }
}
