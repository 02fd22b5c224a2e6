import Detection
import Foundation
import Kafka
import Logging
import Protocol
import ServiceLifecycle

/// A worker process: registers with the coordinator, keeps its lease with heartbeats, runs the
/// partitions it is assigned and sends their results.
///
/// - Registration is retried with exponential backoff while the coordinator is unreachable.
/// - Assignments arrive with heartbeat responses as the complete set the worker should own.
///   A new partition is started from its last checkpoint (or the configured start offset); a
///   partition no longer listed is handed off: final checkpoint, then release.
/// - Self-fencing: if no heartbeat succeeds for `leaseTimeout`, the coordinator will have given
///   the partitions to someone else, so the worker stops them all without writing, and registers
///   again when the coordinator answers.
/// - On graceful shutdown (SIGTERM/SIGINT), every partition is handed off before the process exits.
public actor WorkerNode: Service {
    public struct Options: Sendable {
        public var coordinator: String
        public var workerID: String
        public var advertisedAddress: String
        public var outboxCapacity: Int

        public init(coordinator: String, workerID: String? = nil, advertisedAddress: String? = nil, outboxCapacity: Int = 256) {
            self.coordinator = coordinator
            let host = ProcessInfo.processInfo.hostName
            let pid = ProcessInfo.processInfo.processIdentifier
            self.workerID = workerID ?? "\(host)-\(pid)-\(UInt32.random(in: 0...0xFFFF))"
            self.advertisedAddress = advertisedAddress ?? host
            self.outboxCapacity = outboxCapacity
        }
    }

    private let options: Options
    private let client: RPCClient
    private var logger: Logger
    private var settings: WorkerSettings?
    private var loop: ConsumeLoop?
    private var consumer: KafkaConsumer?
    private let outbox: Outbox
    /// Partitions (with epochs) the coordinator wants this worker to run.
    private var desired: Set<Assignment> = []
    /// Partitions started (or starting) here.
    private var started: [Int32: Int64] = [:]
    private var lastLeaseRenewal = ContinuousClock.now

    public init(options: Options, logger: Logger) throws {
        self.options = options
        self.client = try RPCClient(address: options.coordinator, logger: logger)
        var logger = logger
        logger[metadataKey: "worker.id"] = "\(options.workerID)"
        self.logger = logger
        self.outbox = Outbox(capacity: options.outboxCapacity)
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await self.runUntilCancelled()
        } onGracefulShutdown: {
            Task { await self.beginShutdown() }
        }
    }

    private var shuttingDown = false

    private func beginShutdown() {
        shuttingDown = true
    }

    private func runUntilCancelled() async throws {
        let settings = try await register()
        let consumer = try KafkaConsumer(
            brokers: settings.kafka.brokers,
            properties: settings.kafka.properties.merging(["group.id": "vigil-\(options.workerID)"]) { mine, _ in mine },
            logger: logger)
        self.consumer = consumer
        let loop = ConsumeLoop(
            consumer: consumer, topic: settings.kafka.topic, workerID: options.workerID, outbox: outbox,
            checkpointInterval: .milliseconds(settings.checkpointIntervalMs), logger: logger)
        self.loop = loop
        loop.start()

        async let sender: Void = sendLoop()
        await heartbeatLoop(settings: settings)
        // Shutting down (or cancelled): hand off every partition. The loop queues final
        // checkpoints and releases; the sender delivers them (bounded retries), then ends.
        shuttingDown = true
        logger.info("handing off partitions before exit", metadata: ["partitions": "\(started.keys.sorted())"])
        await loop.stop()
        outbox.close()
        await sender
        consumer.close()
        await client.close()
        logger.info("worker stopped")
    }

    // MARK: - Registration and heartbeats

    private func register() async throws -> WorkerSettings {
        var backoff = Backoff()
        while true {
            try Task.checkCancellation()
            if shuttingDown { throw CancellationError() }
            do {
                let response: RegisterResponse = try await client.call(
                    RPCPath.register,
                    RegisterRequest(workerID: options.workerID, address: options.advertisedAddress, pid: ProcessInfo.processInfo.processIdentifier))
                settings = response.settings
                lastLeaseRenewal = .now
                logger.info("registered", metadata: ["coordinator": "\(options.coordinator)", "cluster": "\(response.settings.clusterName)", "brokers": "\(response.settings.kafka.brokers)", "topic": "\(response.settings.kafka.topic)"])
                return response.settings
            } catch {
                let delay = backoff.next()
                logger.warning("cannot register with coordinator \(options.coordinator): \(error); retrying in \(delay)")
                try await Task.sleep(for: delay)
            }
        }
    }

    private func heartbeatLoop(settings: WorkerSettings) async {
        let interval = Duration.milliseconds(settings.heartbeatIntervalMs)
        let leaseTimeout = Duration.milliseconds(settings.leaseTimeoutMs)
        var fenced = false
        while !Task.isCancelled && !shuttingDown {
            guard let loop else { return }
            let request = HeartbeatRequest(
                workerID: options.workerID, partitions: loop.progress,
                rssBytes: ProcessStats.residentBytes(), cpuSeconds: ProcessStats.cpuSeconds())
            do {
                let response: HeartbeatResponse = try await client.call(RPCPath.heartbeat, request, timeout: interval * 2)
                switch response.status {
                case .ok:
                    lastLeaseRenewal = .now
                    if fenced {
                        logger.info("coordinator reachable again")
                        fenced = false
                    }
                    await reconcile(response.assignments, settings: settings)
                case .unknownWorker:
                    logger.warning("coordinator does not know this worker (restarted, or declared it down): stopping partitions and registering again")
                    stopAllWithoutWriting()
                    _ = try? await register()
                }
            } catch {
                if .now - lastLeaseRenewal >= leaseTimeout {
                    if !fenced {
                        logger.error("lease expired: no heartbeat accepted for \(leaseTimeout); stopping all partitions (\(error))")
                        stopAllWithoutWriting()
                        fenced = true
                    }
                } else {
                    logger.warning("heartbeat failed: \(error)")
                }
            }
            try? await Task.sleep(for: interval)
        }
    }

    private func stopAllWithoutWriting() {
        loop?.send(.stopAll)
        started.removeAll()
        desired.removeAll()
    }

    /// Brings running partitions in line with the coordinator's list.
    private func reconcile(_ assignments: [Assignment], settings: WorkerSettings) async {
        let wanted = Set(assignments)
        desired = wanted
        for (partition, epoch) in started where !wanted.contains(Assignment(partition: partition, epoch: epoch)) {
            started[partition] = nil
            loop?.send(.stop(partition: partition, epoch: epoch, handoff: true))
        }
        for assignment in assignments.sorted(by: { $0.partition < $1.partition }) where started[assignment.partition] != assignment.epoch {
            await startPartition(assignment, settings: settings)
        }
    }

    private func startPartition(_ assignment: Assignment, settings: WorkerSettings) async {
        let response: FetchCheckpointResponse
        do {
            response = try await client.call(
                RPCPath.fetchCheckpoint,
                FetchCheckpointRequest(workerID: options.workerID, partition: assignment.partition, epoch: assignment.epoch))
        } catch {
            logger.warning("cannot fetch checkpoint of partition \(assignment.partition): \(error); will retry")
            return
        }
        guard response.accepted else { return }
        guard desired.contains(assignment) else { return }
        let processor: PartitionProcessor
        var startOffset: Int64?
        if let state = response.state, let next = response.nextOffset {
            do {
                processor = try PartitionProcessor(partition: assignment.partition, config: settings.detection, restoring: Array(state))
                startOffset = next
            } catch {
                logger.error("checkpoint \(response.checkpointID ?? -1) of partition \(assignment.partition) cannot be restored: \(error); replaying from the start offset")
                processor = PartitionProcessor(partition: assignment.partition, config: settings.detection)
                startOffset = settings.kafka.startOffset == "latest" ? nil : 0
            }
        } else {
            processor = PartitionProcessor(partition: assignment.partition, config: settings.detection)
            startOffset = settings.kafka.startOffset == "latest" ? nil : 0
        }
        started[assignment.partition] = assignment.epoch
        loop?.send(.start(partition: assignment.partition, epoch: assignment.epoch, processor: processor, startOffset: startOffset))
    }

    // MARK: - Sending results

    private func sendLoop() async {
        while let item = await outbox.next() {
            await deliver(item)
        }
    }

    /// Sends one item, retrying with backoff while the coordinator is unreachable. A rejection
    /// (stale epoch) stops the partition here: another worker owns it now.
    private func deliver(_ item: OutboxItem) async {
        var backoff = Backoff()
        while true {
            do {
                let accepted: Bool
                let reason: String?
                switch item {
                case .report(let report):
                    let response: ReportResponse = try await client.call(RPCPath.report, report)
                    (accepted, reason) = (response.accepted, response.reason)
                case .checkpoint(let checkpoint):
                    let response: CheckpointResponse = try await client.call(RPCPath.checkpoint, checkpoint)
                    (accepted, reason) = (response.accepted, response.reason)
                case .release(let release):
                    let response: ReleaseResponse = try await client.call(RPCPath.release, release)
                    (accepted, reason) = (response.accepted, nil)
                }
                if !accepted {
                    logger.warning("coordinator rejected a write: \(reason ?? "stale epoch"); stopping partition", metadata: ["partition": "\(item.partition)", "epoch": "\(item.epoch)"])
                    if started[item.partition] == item.epoch {
                        started[item.partition] = nil
                        loop?.send(.stop(partition: item.partition, epoch: item.epoch, handoff: false))
                    }
                    outbox.discard(partition: item.partition, epoch: item.epoch)
                }
                return
            } catch {
                if shuttingDown && backoff.attempts > 5 { return }
                let delay = backoff.next()
                logger.warning("cannot deliver to coordinator: \(error); retrying in \(delay)")
                try? await Task.sleep(for: delay)
            }
        }
    }
}

/// Exponential backoff with jitter: 100 ms doubling up to 5 s.
struct Backoff {
    private(set) var attempts = 0
    var base: Duration = .milliseconds(100)
    var cap: Duration = .seconds(5)

    mutating func next() -> Duration {
        attempts += 1
        let exponential = base * (1 << min(attempts - 1, 10))
        let capped = min(exponential, cap)
        let jitter = Double.random(in: 0.8...1.2)
        return capped * jitter
    }
}
