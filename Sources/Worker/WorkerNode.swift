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
///   the partitions to someone else, so the worker stops them all without writing (nothing queued
///   is sent either), and registers again when the coordinator answers. The lease is counted from
///   when the last accepted heartbeat was *sent*, so the worker never believes in a lease the
///   coordinator has already expired (a worker frozen by SIGSTOP wakes up fenced).
/// - On graceful shutdown (SIGTERM/SIGINT) the worker leaves: it deregisters, keeps heartbeating
///   while the coordinator hands every partition off (final checkpoint and release for each), and
///   exits once it owns nothing and its outbox is delivered, or after `drainTimeout`. If the
///   coordinator stays unreachable for a lease, it stops without writing: the coordinator moves
///   the partitions when the lease expires.
public actor WorkerNode: Service {
    public struct Options: Sendable {
        public var coordinator: String
        public var workerID: String
        public var advertisedAddress: String
        public var outboxCapacity: Int
        /// How long a graceful leave may take (handoffs and delivering what is queued) before the
        /// worker exits anyway.
        public var drainTimeout: Duration
        /// Prometheus metrics and progress log lines, fed with each heartbeat; nil for none.
        public var metrics: WorkerMetrics?
        /// HOST:PORT of this worker's `/metrics`, reported to the coordinator when registering.
        public var metricsAddress: String?
        /// TLS to the coordinator (nil: cleartext) and the cluster token sent with every call.
        public var tls: ClientTLS? = nil
        public var token: SecretToken? = nil

        public init(coordinator: String, workerID: String? = nil, advertisedAddress: String? = nil, outboxCapacity: Int = 256, drainTimeout: Duration = .seconds(20), metrics: WorkerMetrics? = nil, metricsAddress: String? = nil) {
            self.coordinator = coordinator
            let host = ProcessInfo.processInfo.hostName
            let pid = ProcessInfo.processInfo.processIdentifier
            self.workerID = workerID ?? "\(host)-\(pid)-\(UInt32.random(in: 0...0xFFFF))"
            self.advertisedAddress = advertisedAddress ?? host
            self.outboxCapacity = outboxCapacity
            self.drainTimeout = drainTimeout
            self.metrics = metrics
            self.metricsAddress = metricsAddress
        }
    }

    let options: Options
    let client: RPCClient
    var logger: Logger
    private var settings: WorkerSettings?
    var loop: ConsumeLoop?
    private var consumer: KafkaConsumer?
    let outbox: Outbox
    /// Partitions (with epochs) the coordinator wants this worker to run.
    private var desired: Set<Assignment> = []
    /// Partitions started (or starting) here.
    var started: [Int32: Int64] = [:]
    /// When the last heartbeat the coordinator accepted was sent: the lease runs from there.
    var lastLeaseRenewal = ContinuousClock.now
    /// Set when the lease ran out: every task was stopped without writing; cleared by the next
    /// accepted heartbeat or registration.
    var fenced = false
    /// Set on graceful shutdown: the leave (and the last deliveries) end by then.
    var exitDeadline: ContinuousClock.Instant?

    public init(options: Options, logger: Logger) throws {
        self.options = options
        self.client = try RPCClient(address: options.coordinator, logger: logger, tls: options.tls, token: options.token)
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

    var shuttingDown = false

    private func beginShutdown() {
        guard !shuttingDown else { return }
        shuttingDown = true
        exitDeadline = .now + options.drainTimeout
    }

    private func runUntilCancelled() async throws {
        let settings = try await register()
        let consumer = try KafkaConsumer(
            brokers: settings.kafka.brokers,
            properties: settings.kafka.properties.merging(Self.consumerDefaults(workerID: options.workerID)) { configured, _ in configured },
            logger: logger)
        self.consumer = consumer
        let loop = ConsumeLoop(
            consumer: consumer, topic: settings.kafka.topic, workerID: options.workerID, outbox: outbox,
            checkpointInterval: .milliseconds(settings.checkpointIntervalMs), logger: logger)
        self.loop = loop
        loop.start()

        async let sender: Void = sendLoop()
        await heartbeatLoop(settings: settings)
        if shuttingDown {
            await leave(settings: settings)
        } else {
            beginShutdown()  // cancelled
        }
        // Whatever still runs (the leave timed out, or the task was cancelled) is stopped with a
        // final checkpoint and release; the sender delivers what it can until `exitDeadline`.
        if !started.isEmpty {
            logger.info("stopping partitions still running before exit", metadata: ["partitions": "\(started.keys.sorted())"])
        }
        await loop.stop()
        outbox.close()
        await sender
        consumer.close()
        await client.close()
        logger.info("worker stopped")
    }

    /// Consumer settings the worker needs unless `[kafka.properties]` says otherwise: a group id
    /// (librdkafka wants one even with manual assignment) and a prefetch queue small enough to keep
    /// memory flat (librdkafka's default holds up to 64 MiB). A small queue costs no throughput
    /// because the consume loop wakes fetching as soon as the queue runs low (`KafkaFetchWaker`):
    /// `make bench` measured 1.9 M trades/s with 4 MiB and 1.7 M/s with 64 MiB.
    static func consumerDefaults(workerID: String) -> [String: String] {
        ["group.id": "vigil-\(workerID)", "queued.max.messages.kbytes": "4096"]
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
                    RegisterRequest(workerID: options.workerID, address: options.advertisedAddress, pid: ProcessInfo.processInfo.processIdentifier, metricsAddress: options.metricsAddress))
                settings = response.settings
                lastLeaseRenewal = .now
                fenced = false
                logger.info("registered", metadata: ["coordinator": "\(options.coordinator)", "cluster": "\(response.settings.clusterName)", "brokers": "\(response.settings.kafka.brokers)", "topic": "\(response.settings.kafka.topic)"])
                return response.settings
            } catch let error as RPCError where error.isAccessDenied {
                // No or a wrong cluster token: retrying with the same one cannot help (docs/security.md).
                logger.error("the coordinator refused this worker: \(error); start it again with the cluster token ([security] cluster_token_file or VIGIL_CLUSTER_TOKEN)")
                throw error
            } catch {
                let delay = backoff.next()
                logger.warning("cannot register with coordinator \(options.coordinator): \(error); retrying in \(delay)")
                try await Task.sleep(for: delay)
            }
        }
    }

    private func heartbeatLoop(settings: WorkerSettings) async {
        let interval = Duration.milliseconds(settings.heartbeatIntervalMs)
        while !Task.isCancelled && !shuttingDown {
            if await heartbeat(settings: settings) == .unknownWorker {
                logger.warning("coordinator does not know this worker (restarted, or declared it down): stopping partitions and registering again")
                stopAllWithoutWriting()
                _ = try? await register()
            }
            try? await Task.sleep(for: interval)
        }
    }

    enum HeartbeatOutcome {
        case renewed
        /// The coordinator does not know this worker: it must register (or, leaving, deregister) again.
        case unknownWorker
        case failed
    }

    /// Sends one heartbeat with the progress of every running partition. Accepted: the lease is
    /// renewed and the running partitions are reconciled with the answer. Failed past the lease:
    /// the worker fences itself.
    func heartbeat(settings: WorkerSettings) async -> HeartbeatOutcome {
        guard let loop else { return .failed }
        let interval = Duration.milliseconds(settings.heartbeatIntervalMs)
        let (progress, taskEvents) = loop.takeProgress()
        let request = HeartbeatRequest(
            workerID: options.workerID, partitions: progress,
            rssBytes: ProcessStats.residentBytes(), cpuSeconds: ProcessStats.cpuSeconds())
        options.metrics?.heartbeat(request, outboxDepth: outbox.count, taskEvents: taskEvents)
        let sentAt = ContinuousClock.now
        // A call never outlasts the lease: when the coordinator is cut off, the worker fences
        // itself the moment its lease runs out, not up to a call timeout later (by then the
        // coordinator may have declared it down and handed its partitions on).
        let leaseLeft = .milliseconds(settings.leaseTimeoutMs) - (sentAt - lastLeaseRenewal)
        let timeout = max(.milliseconds(100), min(interval * 2, leaseLeft))
        do {
            let response: HeartbeatResponse = try await client.call(RPCPath.heartbeat, request, timeout: timeout)
            options.metrics?.rpc(RPCPath.heartbeat, duration: .now - sentAt, ok: true)
            switch response.status {
            case .ok:
                // The coordinator renewed the lease after `sentAt`: counting from `sentAt` keeps
                // this side's lease never longer than the coordinator's.
                lastLeaseRenewal = sentAt
                if fenced {
                    logger.info("coordinator reachable again; lease renewed")
                    fenced = false
                }
                await reconcile(response.assignments, settings: settings)
                return .renewed
            case .unknownWorker:
                return .unknownWorker
            }
        } catch {
            options.metrics?.rpc(RPCPath.heartbeat, duration: .now - sentAt, ok: false)
            if leaseExpired {
                selfFence("no heartbeat accepted for \(Duration.milliseconds(settings.leaseTimeoutMs)) (\(error))")
            } else {
                logger.warning("heartbeat failed: \(error)")
            }
            return .failed
        }
    }

    /// True when no heartbeat sent within the last lease timeout was accepted: the coordinator
    /// may have declared this worker down and given its partitions to others.
    var leaseExpired: Bool {
        guard let settings else { return false }
        return ContinuousClock.now - lastLeaseRenewal >= .milliseconds(settings.leaseTimeoutMs)
    }

    /// Stops every partition without writing (once per lease loss): another owner may exist.
    func selfFence(_ why: String) {
        guard !fenced else { return }
        fenced = true
        logger.error("lease expired: \(why); stopping all partitions without writing", metadata: ["partitions": "\(started.keys.sorted())"])
        stopAllWithoutWriting()
    }

    func stopAllWithoutWriting() {
        loop?.send(.stopAll)
        started.removeAll()
        desired.removeAll()
    }

    /// Brings running partitions in line with the coordinator's list.
    /// While leaving (shutting down) nothing new is started.
    private func reconcile(_ assignments: [Assignment], settings: WorkerSettings) async {
        let wanted = Set(assignments)
        desired = wanted
        for (partition, epoch) in started where !wanted.contains(Assignment(partition: partition, epoch: epoch)) {
            started[partition] = nil
            loop?.send(.stop(partition: partition, epoch: epoch, handoff: true))
        }
        for assignment in assignments.sorted(by: { $0.partition < $1.partition }) where started[assignment.partition] != assignment.epoch && !shuttingDown {
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
        loop?.send(.start(
            partition: assignment.partition, epoch: assignment.epoch, processor: processor, startOffset: startOffset,
            checkpointID: startOffset != nil ? response.checkpointID : nil))
    }

    // MARK: - Sending results

    /// Delivers the outbox: partitions in parallel, each partition's items in order (see `Outbox`).
    private func sendLoop() async {
        await withDiscardingTaskGroup { group in
            while let item = await outbox.next() {
                group.addTask {
                    await self.deliver(item)
                    self.outbox.done(item.partition)
                }
            }
        }
    }

    /// Sends one item, retrying with backoff while the coordinator is unreachable. A rejection
    /// (stale epoch) stops the partition here: another worker owns it now. Nothing is sent once
    /// the lease has expired (the worker fences itself and the item is dropped: the partition's
    /// next owner replays it from the last checkpoint), nor after `exitDeadline`.
    private func deliver(_ item: OutboxItem) async {
        var backoff = Backoff()
        while true {
            if leaseExpired || fenced {
                selfFence("cannot renew the lease; not sending what is queued")
                return
            }
            let sentAt = ContinuousClock.now
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
                    options.metrics?.checkpoint(checkpoint, accepted: response.accepted)
                case .release(let release):
                    let response: ReleaseResponse = try await client.call(RPCPath.release, release)
                    (accepted, reason) = (response.accepted, nil)
                }
                options.metrics?.rpc(item.path, duration: .now - sentAt, ok: true)
                if !accepted {
                    options.metrics?.writeRejected()
                    logger.warning("coordinator rejected a write: \(reason ?? "stale epoch"); stopping partition", metadata: ["partition": "\(item.partition)", "epoch": "\(item.epoch)"])
                    if started[item.partition] == item.epoch {
                        started[item.partition] = nil
                        loop?.send(.stop(partition: item.partition, epoch: item.epoch, handoff: false))
                    }
                    outbox.discard(partition: item.partition, epoch: item.epoch)
                }
                return
            } catch {
                options.metrics?.rpc(item.path, duration: .now - sentAt, ok: false)
                if let exitDeadline, ContinuousClock.now >= exitDeadline {
                    logger.warning("giving up delivering to the coordinator before exit: \(error)", metadata: ["partition": "\(item.partition)", "epoch": "\(item.epoch)"])
                    return
                }
                let delay = backoff.next()
                logger.warning("cannot deliver to coordinator: \(error); retrying in \(delay)", metadata: ["partition": "\(item.partition)", "epoch": "\(item.epoch)"])
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
