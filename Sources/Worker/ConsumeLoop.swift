import Detection
import Foundation
import Kafka
import Logging
import Protocol
import Synchronization

/// The worker's data path: one thread that pulls batches from librdkafka and feeds each record
/// to its partition's task, with no actor hop, lock or allocation per record.
///
/// Everything else talks to it through commands (start/stop a partition) that it applies between
/// batches, and reads what it publishes (progress) under a lock. It stops pulling while the
/// outbox is full (backpressure), so memory stays bounded when the coordinator is slow or away.
final class ConsumeLoop: Sendable {
    enum Command: Sendable {
        /// Start processing a partition from `startOffset` (nil: from the end of the log), with
        /// `processor` restored from checkpoint `checkpointID` (nil: a fresh state).
        case start(partition: Int32, epoch: Int64, processor: PartitionProcessor, startOffset: Int64?, checkpointID: Int64?)
        /// Stop a partition. With `handoff`, first take a final checkpoint and queue a release,
        /// so the next owner resumes exactly where this one stopped.
        case stop(partition: Int32, epoch: Int64, handoff: Bool)
        /// Stop everything without writing (the lease is lost: another owner may exist).
        case stopAll
    }

    private struct Shared {
        var commands: [Command] = []
        var progress: [PartitionProgress] = []
        /// Tasks started and stopped since `takeProgress()` last drained them, in order.
        var taskEvents: [PartitionTaskEvent] = []
        var running = true
        var finished = false
    }

    private let consumer: KafkaConsumer
    private let topic: String
    private let workerID: String
    /// Fewer records than this from a poll while far behind: pause a millisecond (see `loop`).
    static let smallBatch = 1_000
    private let outbox: Outbox
    private let checkpointInterval: Duration
    private let logger: Logger
    private let shared = Mutex(Shared())
    private let wakeup = NSCondition()

    init(consumer: KafkaConsumer, topic: String, workerID: String, outbox: Outbox, checkpointInterval: Duration, logger: Logger) {
        self.consumer = consumer
        self.topic = topic
        self.workerID = workerID
        self.outbox = outbox
        self.checkpointInterval = checkpointInterval
        self.logger = logger
    }

    func send(_ command: Command) {
        shared.withLock { $0.commands.append(command) }
        wake()
    }

    private func wake() {
        wakeup.lock()
        wakeup.signal()
        wakeup.unlock()
    }

    /// Progress of every running partition, as of the last batch.
    var progress: [PartitionProgress] { shared.withLock { $0.progress } }

    /// `progress`, and the tasks started and stopped since the previous call (drained), read
    /// together: every stop in `taskEvents` happened before `progress` was published, so a task
    /// listed as stopped is not running in it (unless started again later in `taskEvents`).
    func takeProgress() -> (progress: [PartitionProgress], taskEvents: [PartitionTaskEvent]) {
        shared.withLock { state in
            defer { state.taskEvents.removeAll() }
            return (state.progress, state.taskEvents)
        }
    }

    /// Partitions running now, with their epochs.
    var running: [Assignment] { shared.withLock { $0.progress.map { Assignment(partition: $0.partition, epoch: $0.epoch) } } }

    func start() {
        Thread.start(named: "vigil-consume") { [self] in self.loop() }
    }

    /// Asks the thread to finish its batch and stop; returns once it has.
    func stop() async {
        shared.withLock { $0.running = false }
        wake()
        while !shared.withLock({ $0.finished }) {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    // MARK: - The thread

    private func loop() {
        var tasks: [Int32: PartitionTask] = [:]
        var rates: [Int32: (at: ContinuousClock.Instant, consumed: Int64, perSecond: Double)] = [:]
        var lastPublish = ContinuousClock.now
        let clock = ContinuousClock()
        // librdkafka 2.0 pauses fetching while its queue is full and may idle up to a second
        // after we drain it; while partitions are far behind their log end, they are woken once
        // the queue runs low.
        let fetchWaker = consumer.makeFetchWaker(topic: topic)
        let refillBelow = max(1_000, consumer.queuedMinMessages / 4)
        let checkpoints = CheckpointWriter(outbox: outbox, logger: logger)
        defer {
            fetchWaker.stop()
            logger.debug("fetch wake-ups sent", metadata: ["count": "\(fetchWaker.sent)"])
        }

        while shared.withLock({ $0.running }) {
            let commands = shared.withLock { state -> [Command] in
                defer { state.commands.removeAll() }
                return state.commands
            }
            if !commands.isEmpty {
                let events = apply(commands, to: &tasks, checkpoints: checkpoints, now: clock.now)
                publish(tasks, rates: rates, taskEvents: events)
            }
            if tasks.isEmpty || outbox.isFull {
                wakeup.lock()
                _ = wakeup.wait(until: Date().addingTimeInterval(tasks.isEmpty ? 0.1 : 0.01))
                wakeup.unlock()
                continue
            }

            let taken = consumer.poll(max: 8192, timeoutMs: 20, { record in
                tasks[record.partition]?.handle(record)
            }, onError: { error in
                self.handle(error, tasks: tasks)
            })

            // Woken only while far behind (catching up): at the live end the queue is always
            // low, and waking there cost latency (p99 14 -> 780 ms in `make bench`).
            let queued = consumer.queuedRecords
            let lag = tasks.values.reduce(Int64(0)) { $0 + $1.lag }
            let farBehind = lag - Int64(queued) > Int64(refillBelow)
            if farBehind && queued < refillBelow {
                fetchWaker.wake(partitions: tasks.values.lazy.filter { $0.lag > 0 }.map(\.partition))
            }
            // Far behind with little queued, this thread outruns librdkafka's fetch thread; were
            // it to wait for each record, every fetch would wake it (~25,000 context switches in
            // a 2M-trade catch-up, against ~3,600 when the queue stays full) and steal the fetch
            // thread's core. A millisecond lets a batch build up; live records never wait for it.
            let pause = farBehind && taken < Self.smallBatch

            let now = clock.now
            for task in tasks.values {
                // A checkpoint still being encoded postpones the next one (no pile-up).
                let checkpointDue = now - task.lastCheckpointAt >= checkpointInterval && !checkpoints.isPending(task.partition)
                task.flush(workerID: workerID, to: outbox, now: now, force: checkpointDue)
                if checkpointDue {
                    checkpoints.submit(.init(workerID: workerID, partition: task.partition, epoch: task.epoch, frozen: task.freeze(now: now), release: false))
                }
            }
            if now - lastPublish >= .milliseconds(100) {
                for task in tasks.values {
                    if let marks = consumer.cachedWatermarks(topic: topic, partition: task.partition) {
                        task.noteLogEnd(marks.high)
                    }
                    let consumed = task.processor.stats.consumed
                    if let previous = rates[task.partition] {
                        let elapsed = now - previous.at
                        if elapsed >= .seconds(1) {
                            rates[task.partition] = (now, consumed, Double(consumed - previous.consumed) / elapsed.inSeconds)
                        }
                    } else {
                        rates[task.partition] = (now, consumed, 0)
                    }
                }
                publish(tasks, rates: rates)
                lastPublish = now
            }
            if pause { Thread.sleep(forTimeInterval: 0.001) }
        }

        // Graceful end: whatever is processed is reported, then checkpointed and released.
        let now = clock.now
        var stopped: [PartitionTaskEvent] = []
        for task in tasks.values.sorted(by: { $0.partition < $1.partition }) {
            finalHandoff(task, checkpoints: checkpoints, now: now)
            stopped.append(.stopped(task.progress(recordsPerSecond: 0)))
        }
        tasks.removeAll()
        checkpoints.finish()
        publish(tasks, rates: [:], taskEvents: stopped)
        shared.withLock { $0.finished = true }
    }

    /// Applies `commands`; returns the tasks they started and stopped, in order, for the metrics.
    private func apply(
        _ commands: [Command], to tasks: inout [Int32: PartitionTask], checkpoints: CheckpointWriter, now: ContinuousClock.Instant
    ) -> [PartitionTaskEvent] {
        var changed = false
        var events: [PartitionTaskEvent] = []
        for command in commands {
            switch command {
            case .start(let partition, let epoch, let processor, let startOffset, let checkpointID):
                if let existing = tasks[partition] {
                    logger.warning("replacing task", metadata: ["partition": "\(partition)", "old_epoch": "\(existing.epoch)", "epoch": "\(epoch)"])
                    events.append(.stopped(existing.progress(recordsPerSecond: 0)))
                }
                let task = PartitionTask(partition: partition, epoch: epoch, processor: processor, startOffset: startOffset, now: now, logger: logger)
                tasks[partition] = task
                events.append(.started(task.startProgress))
                logger.info("partition started", metadata: [
                    "partition": "\(partition)", "epoch": "\(epoch)", "offset": "\(startOffset.map(String.init) ?? "end")",
                    "restored": "\(checkpointID.map { "checkpoint \($0)" } ?? "no checkpoint")",
                    "at.ms": "\(Int64((Date().timeIntervalSince1970 * 1000).rounded()))",
                ])
                changed = true
            case .stop(let partition, let epoch, let handoff):
                guard let task = tasks[partition], task.epoch == epoch else { continue }
                tasks[partition] = nil
                if handoff {
                    finalHandoff(task, checkpoints: checkpoints, now: now)
                } else {
                    checkpoints.cancel(partition: partition, epoch: epoch)
                    outbox.discard(partition: partition, epoch: epoch)
                }
                events.append(.stopped(task.progress(recordsPerSecond: 0)))
                logger.info("partition stopped", metadata: ["partition": "\(partition)", "epoch": "\(epoch)", "handoff": "\(handoff)"])
                changed = true
            case .stopAll:
                if !tasks.isEmpty {
                    logger.error("stopping all partitions without writing: lease lost", metadata: ["partitions": "\(tasks.keys.sorted())"])
                }
                events += tasks.values.sorted { $0.partition < $1.partition }.map { .stopped($0.progress(recordsPerSecond: 0)) }
                for task in tasks.values { checkpoints.cancel(partition: task.partition, epoch: task.epoch) }
                tasks.removeAll()
                outbox.discardAll()
                changed = true
            }
        }
        if changed {
            let assignment = tasks.values.map { (partition: $0.partition, offset: $0.seekOffset) }
            do {
                try consumer.assign(topic: topic, partitions: assignment)
            } catch {
                logger.error("kafka assign failed: \(error)")
            }
        }
        return events
    }

    /// Kafka's per-partition events: end of partition tells the log end; lost offsets are
    /// recorded by their task (the gap check would see them too, but only once a record follows).
    private func handle(_ error: KafkaError, tasks: [Int32: PartitionTask]) {
        switch error.code {
        case .partitionEOF:
            if let partition = error.partition, let offset = error.offset {
                tasks[partition]?.noteLogEnd(offset)
            }
        case .offsetsLost:
            if let partition = error.partition, let range = error.lostOffsets, let task = tasks[partition] {
                task.noteLost(range.lowerBound..<range.upperBound)
            } else {
                logger.error("kafka: \(error)")
            }
        default:
            logger.warning("kafka: \(error)")
        }
    }

    /// Reports what was processed, then (through the writer, after any checkpoint of the task still
    /// being encoded) a last checkpoint and the release, so the next owner resumes exactly here.
    private func finalHandoff(_ task: PartitionTask, checkpoints: CheckpointWriter, now: ContinuousClock.Instant) {
        task.flush(workerID: workerID, to: outbox, now: now, force: true)
        checkpoints.submit(.init(workerID: workerID, partition: task.partition, epoch: task.epoch, frozen: task.freeze(now: now), release: true))
    }

    /// Publishes the running tasks' progress and, under the same lock, the tasks started and
    /// stopped since the previous publication (see `takeProgress()`).
    private func publish(
        _ tasks: [Int32: PartitionTask], rates: [Int32: (at: ContinuousClock.Instant, consumed: Int64, perSecond: Double)],
        taskEvents: [PartitionTaskEvent] = []
    ) {
        let progress = tasks.values
            .map { $0.progress(recordsPerSecond: rates[$0.partition]?.perSecond ?? 0) }
            .sorted { $0.partition < $1.partition }
        shared.withLock { state in
            state.progress = progress
            state.taskEvents += taskEvents
        }
    }
}
