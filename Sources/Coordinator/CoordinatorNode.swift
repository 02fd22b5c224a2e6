import Detection
import Foundation
import Logging
import Protocol
import ServiceLifecycle

/// The cluster's driver, like Spark's: it owns membership (leases), partition assignment
/// (epochs and handoffs), checkpoints and anomalies, and serves the worker RPCs and the operator
/// API as an `HTTPHandler`.
///
/// The decisions are made by pure state machines (`Membership`, `AssignmentPlanner`); this actor
/// feeds them requests and the injected clock, persists their results in `CoordinatorStore`, logs
/// them, and answers. Assignment changes are written to SQLite before any worker can see them, so
/// the epochs a worker is given are always the ones fencing checks against.
///
/// **Restarts.** `init` reloads assignments, epochs, checkpoints and lost ranges from the store.
/// Workers that were live are restored with a fresh lease: they keep their partitions if they
/// register again within `leaseTimeoutMs` (their heartbeats are answered `unknown_worker` until
/// they do), and are declared down otherwise. Nothing stored is lost (DESIGN.md, semantics 8).
///
/// **Fencing.** Reports, checkpoints, checkpoint fetches and releases from a worker that is not
/// the partition's owner under its current epoch are answered HTTP 200 with `accepted: false` and
/// a `reason`; nothing is written and the worker must stop that task.
///
/// **Time.** Every decision uses `clock()` (ms). `tick()` expires leases, completes timed-out
/// handoffs, rebalances and applies retention; `run()` calls it every `tickIntervalMs` until
/// cancelled or gracefully shut down. Tests call `tick()` themselves with a clock they move.
public actor CoordinatorNode: HTTPHandler, Service {
    public nonisolated let config: CoordinatorConfig
    public nonisolated let store: CoordinatorStore
    /// Coordinator time at which this node started (shown in `/v1/status`).
    public nonisolated let startedAtMs: Int64
    /// Prometheus metrics served at `/metrics` (see `CoordinatorMetrics`).
    public nonisolated let metrics: CoordinatorMetrics
    let logger: Logger
    let clock: @Sendable () -> Int64
    let planner: AssignmentPlanner

    var membership: Membership
    /// One row per partition, in partition order; always equal to what the store holds.
    var assignments: [PartitionAssignment]
    /// (partition, epoch) pairs a heartbeat answer has given to their owner. A partition its owner
    /// was never told about moves without a handoff (see `AssignmentPlanner`).
    var announced: Set<Assignment>
    /// The current owner's latest progress per partition (cleared when the owner changes).
    var progress: [Int32: PartitionProgress] = [:]
    var workerLoad: [String: WorkerLoad] = [:]
    var lost: [Int32: [OffsetRange]]
    var checkpoints: [Int32: CheckpointSummary]
    /// Coordinator time each partition's owner was given it under the current epoch.
    var assignedAt: [Int32: Int64]
    var lastRetentionMs: Int64?
    /// Rates, ages and restarts derived from heartbeats, for the operator's view of the status.
    var operatorView = StatusTracker()
    private var subscribers: [Int: AsyncStream<Anomaly>.Continuation] = [:]
    private var nextSubscriberID = 0

    /// Resources a worker reported with its last heartbeat.
    struct WorkerLoad {
        var rssBytes: Int64
        var cpuSeconds: Double
    }

    /// The wall clock in ms since the Unix epoch: the default `clock`.
    public static let wallClock: @Sendable () -> Int64 = { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    /// Reloads the cluster's state from `store` (see "Restarts" above). Throws when the store
    /// cannot be read or the reloaded assignments cannot be written back.
    public init(config: CoordinatorConfig, store: CoordinatorStore, logger: Logger, clock: @escaping @Sendable () -> Int64 = CoordinatorNode.wallClock, metrics: CoordinatorMetrics = CoordinatorMetrics()) throws {
        let now = clock()
        let settings = config.settings
        let planner = AssignmentPlanner(partitionCount: settings.kafka.partitions, handoffTimeoutMs: config.handoffTimeoutMs)
        var membership = Membership(
            heartbeatIntervalMs: settings.heartbeatIntervalMs, leaseTimeoutMs: settings.leaseTimeoutMs,
            forgetDownAfterMs: config.forgetDownWorkersAfterMs)
        for worker in try store.loadWorkers() where worker.state != Membership.MemberState.down.rawValue {
            membership.restore(
                id: worker.id, address: worker.address, pid: worker.pid, registeredAtMs: worker.registeredAtMs, now: now,
                leaving: worker.state == Membership.MemberState.leaving.rawValue)
        }
        let stored = try store.loadAssignments()
        // An owner missing from the workers table (not expected) still gets one lease to come back.
        for owner in Set(stored.compactMap(\.owner)) where membership[owner] == nil {
            membership.restore(id: owner, address: "unknown", pid: 0, registeredAtMs: now, now: now)
        }
        let plan = planner.plan(stored, live: membership.liveIDs, leaving: membership.leavingIDs, now: now)
        if plan.assignments != stored {
            try store.saveAssignments(plan.assignments, changes: plan.changes, now: now)
        }

        self.config = config
        self.store = store
        self.startedAtMs = now
        self.metrics = metrics
        self.logger = logger
        self.clock = clock
        self.planner = planner
        self.membership = membership
        self.assignments = plan.assignments
        // After a restart nobody knows what workers were told: assume every stored assignment was.
        self.announced = Set(stored.filter { $0.owner != nil }.map { Assignment(partition: $0.partition, epoch: $0.epoch) })
        let checkpoints = Dictionary(try store.loadCheckpointSummaries().map { ($0.partition, $0) }, uniquingKeysWith: { $1 })
        self.lost = try store.loadLostRanges().mapValues(OffsetRanges.union)
        self.checkpoints = checkpoints
        self.assignedAt = try store.loadAssignmentTimes()

        logger.info("coordinator state loaded", metadata: [
            "cluster": "\(config.clusterName)", "database": "\(store.path)", "partitions": "\(settings.kafka.partitions)",
            "workers.restored": "\(membership.liveIDs.sorted())", "checkpoints": "\(checkpoints.count)",
        ])
        for change in plan.changes {
            logger.info("partition \(change.kind.rawValue)", metadata: Self.metadata(change))
        }
    }

    /// Opens (creating if needed) the database at `config.databasePath`, then as above.
    public init(config: CoordinatorConfig, logger: Logger, clock: @escaping @Sendable () -> Int64 = CoordinatorNode.wallClock) throws {
        try self.init(config: config, store: CoordinatorStore(path: config.databasePath), logger: logger, clock: clock)
    }

    // MARK: - Time

    /// Expires leases, completes timed-out handoffs, moves partitions of down workers, and applies
    /// retention when it is due (every `retentionIntervalMs`, first on the first tick).
    public func tick() async {
        let now = clock()
        for directive in membership.tick(now: now) {
            apply(directive, now: now)
        }
        rebalance(now: now)
        if lastRetentionMs.map({ now - $0 >= config.retentionIntervalMs }) ?? true {
            lastRetentionMs = now
            await applyRetention(now: now)
        }
    }

    /// Calls `tick()` every `tickIntervalMs` until the task is cancelled or a graceful shutdown
    /// begins; then returns normally.
    public func run() async throws {
        logger.info("coordinator running", metadata: ["cluster": "\(config.clusterName)", "listen": "\(config.listenAddress)"])
        let interval = config.tickIntervalMs
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.tick()
                try? await Task.sleep(for: .milliseconds(interval))
            }
        }
        logger.info("coordinator stopped ticking", metadata: ["cluster": "\(config.clusterName)"])
    }

    // MARK: - Inserted anomalies

    /// The hook for `vigil demo` and alerts (`onAnomaliesInserted`): a stream of every anomaly at
    /// its FIRST insert into the store (never a replay), in insert order, suppressed ones included
    /// (check `suppressed` before alerting). Each call makes a new independent subscription, which
    /// ends when the consumer stops iterating. A consumer more than `bufferingNewest` anomalies
    /// behind loses the oldest ones (the store still has them); the coordinator never waits for it.
    public func insertedAnomalies(bufferingNewest limit: Int = 10_000) -> AsyncStream<Anomaly> {
        let (stream, continuation) = AsyncStream.makeStream(of: Anomaly.self, bufferingPolicy: .bufferingNewest(limit))
        subscribers[nextSubscriberID] = continuation
        nextSubscriberID += 1
        return stream
    }

    func publish(_ anomalies: [Anomaly]) {
        guard !anomalies.isEmpty else { return }
        for (id, continuation) in subscribers {
            for anomaly in anomalies {
                if case .terminated = continuation.yield(anomaly) {
                    subscribers[id] = nil
                    break
                }
            }
        }
    }

    // MARK: - Applying decisions

    /// Replans with the current live workers and applies the result.
    func rebalance(now: Int64) {
        apply(planner.plan(assignments, live: membership.liveIDs, leaving: membership.leavingIDs, now: now, announced: announced), now: now)
    }

    /// Persists `plan` and only then makes it current (so no worker sees an assignment the
    /// database does not have). On a storage failure nothing changes: the next tick retries.
    @discardableResult
    func apply(_ plan: AssignmentPlan, now: Int64) -> Bool {
        let changedRows = plan.assignments.enumerated().filter { index, row in
            index >= assignments.count || assignments[index] != row
        }.map(\.element)
        guard !changedRows.isEmpty || !plan.changes.isEmpty else { return true }
        do {
            try store.saveAssignments(changedRows, changes: plan.changes, now: now)
        } catch {
            logger.error("cannot persist assignment changes; keeping the previous assignments, retrying on the next tick", metadata: [
                "error": "\(error)", "changes": "\(plan.changes.map(\.description))",
            ])
            return false
        }
        for change in plan.changes {
            if change.kind != .handoffStarted && change.kind != .handoffRetargeted && change.kind != .handoffCancelled {
                progress[change.partition] = nil
            }
            if change.to != nil && change.movesOwner {
                // The moment a failover or handoff completes: the new owner may start now.
                assignedAt[change.partition] = now
                logger.info("partition moved", metadata: Self.metadata(change).merging([
                    "reason": "\(change.kind.rawValue)", "at.ms": "\(now)",
                ]) { $1 })
            } else {
                logger.info("partition \(change.kind.rawValue)", metadata: Self.metadata(change))
            }
        }
        assignments = plan.assignments
        announced = announced.filter { assignment($0.partition)?.epoch == $0.epoch }
        return true
    }

    func apply(_ directive: Membership.Directive, now: Int64) {
        switch directive {
        case .joined(let id):
            logger.info("worker joined", metadata: workerMetadata(id))
            persistWorker(id, event: "joined", now: now)
        case .reregistered(let id):
            logger.info("worker registered again; it keeps its partitions", metadata: workerMetadata(id))
            persistWorker(id, event: "reregistered", now: now)
        case .suspect(let id, let silentMs):
            logger.info("worker suspect: missed heartbeats", metadata: workerMetadata(id).merging(["silent.ms": "\(silentMs)"]) { $1 })
            persistWorker(id, event: "suspect", detail: "silent for \(silentMs) ms", now: now)
        case .recovered(let id):
            logger.info("worker recovered: heartbeats resumed", metadata: workerMetadata(id))
            persistWorker(id, event: "recovered", now: now)
        case .down(let id, let silentMs):
            logger.info("worker down: lease expired; its partitions move", metadata: workerMetadata(id).merging([
                "silent.ms": "\(silentMs)", "partitions": "\(assignments.filter { $0.owner == id }.map(\.partition))",
            ]) { $1 })
            workerLoad[id] = nil
            persistWorker(id, event: "down", detail: "silent for \(silentMs) ms", now: now)
        case .leaving(let id):
            logger.info("worker leaving: handing its partitions off", metadata: workerMetadata(id).merging([
                "partitions": "\(assignments.filter { $0.owner == id }.map(\.partition))",
            ]) { $1 })
            persistWorker(id, event: "leaving", now: now)
        case .left(let id):
            logger.info("worker left: every partition handed off", metadata: ["worker.id": "\(id)"])
            workerLoad[id] = nil
            do {
                try store.forgetWorker(id: id, event: "left", now: now)
            } catch {
                logger.error("cannot remove a worker that left from the database", metadata: ["worker.id": "\(id)", "error": "\(error)"])
            }
        case .forgotten(let id):
            logger.debug("down worker forgotten", metadata: ["worker.id": "\(id)"])
            do {
                try store.forgetWorker(id: id, now: now)
            } catch {
                logger.error("cannot remove a forgotten worker from the database", metadata: ["worker.id": "\(id)", "error": "\(error)"])
            }
        }
    }

    private func persistWorker(_ id: String, event: String, detail: String = "", now: Int64) {
        guard let member = membership[id] else { return }
        let worker = StoredWorker(id: id, address: member.address, pid: member.pid, state: member.state.rawValue, registeredAtMs: member.registeredAtMs)
        do {
            try store.saveWorker(worker, event: event, detail: detail, now: now)
        } catch {
            logger.error("cannot persist a worker's state", metadata: ["worker.id": "\(id)", "event": "\(event)", "error": "\(error)"])
        }
    }

    private func applyRetention(now: Int64) async {
        do {
            let deleted = try await store.applyRetention(config.retention, now: now)
            noteRetention(deleted)
            if deleted.total > 0 {
                logger.info("retention applied", metadata: [
                    "windows": "\(deleted.windows)", "late_events": "\(deleted.lateEvents)",
                    "malformed": "\(deleted.malformedRecords)", "anomalies": "\(deleted.anomalies)", "history": "\(deleted.history)",
                ])
            }
        } catch {
            logger.error("retention failed; retrying at the next interval", metadata: ["error": "\(error)"])
        }
    }

    func workerMetadata(_ id: String) -> Logger.Metadata {
        guard let member = membership[id] else { return ["worker.id": "\(id)"] }
        return ["worker.id": "\(id)", "worker.address": "\(member.address)", "worker.pid": "\(member.pid)"]
    }

    static func metadata(_ change: AssignmentChange) -> Logger.Metadata {
        ["partition": "\(change.partition)", "from": "\(change.from ?? "-")", "to": "\(change.to ?? "-")", "epoch": "\(change.epoch)"]
    }
}
