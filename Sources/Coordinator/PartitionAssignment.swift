/// Who owns one Kafka partition, under which epoch, and whether it is being handed off.
///
/// Invariants kept by `AssignmentPlanner`:
/// - `state == .unassigned` exactly when `owner == nil` (no live worker could take it).
/// - `state == .releasing` exactly when `releasingSinceMs` is set; `target` is set too, unless no
///   live worker is left (the owner is leaving the cluster and hands off to nobody).
/// - `epoch` increases by one each time a new owner is given the partition, and never otherwise,
///   so every (partition, epoch) pair names exactly one owner. Fencing compares against it.
public struct PartitionAssignment: Codable, Sendable, Equatable, Hashable {
    public var partition: Int32
    /// The worker allowed to write for this partition (reports, checkpoints, release) under `epoch`.
    /// While `releasing` it is still the old owner: its final checkpoint must be accepted.
    public var owner: String?
    public var epoch: Int64
    public var state: AssignmentState
    /// Next owner while `releasing`; it gets the partition (with `epoch + 1`) once the handoff completes.
    /// Nil while releasing to nobody: the partition is then `unassigned` until a worker joins.
    public var target: String?
    /// Coordinator time at which the handoff started; bounds it by the handoff timeout.
    public var releasingSinceMs: Int64?

    public init(partition: Int32, owner: String?, epoch: Int64, state: AssignmentState, target: String? = nil, releasingSinceMs: Int64? = nil) {
        self.partition = partition
        self.owner = owner
        self.epoch = epoch
        self.state = state
        self.target = target
        self.releasingSinceMs = releasingSinceMs
    }

    /// A partition nobody has owned yet: epoch 0, so its first owner gets epoch 1.
    public static func unowned(_ partition: Int32) -> PartitionAssignment {
        PartitionAssignment(partition: partition, owner: nil, epoch: 0, state: .unassigned)
    }

    /// True when `worker` may write for this partition under `epoch` (the fencing rule):
    /// it is the owner, the epoch is current, and the partition is active or being released by it.
    public func permitsWrite(by worker: String, epoch: Int64) -> Bool {
        state != .unassigned && owner == worker && self.epoch == epoch
    }

    /// Why a write by `worker` under `epoch` is refused, for the worker's log and ours.
    public func fencingReason(worker: String, epoch: Int64) -> String {
        guard let owner else {
            return "partition \(partition) has no owner (epoch \(self.epoch)); stop the task and wait for an assignment"
        }
        if owner != worker {
            return "partition \(partition) is owned by \(owner) at epoch \(self.epoch), not by \(worker) at epoch \(epoch); stop the task"
        }
        return "stale epoch \(epoch) for partition \(partition): current epoch is \(self.epoch); stop the task"
    }
}

/// Lifecycle of a partition's ownership. Raw values are stored in SQLite.
public enum AssignmentState: String, Codable, Sendable, CaseIterable {
    /// No live worker owns it (no workers, or all are down). Every write is rejected.
    case unassigned
    /// `owner` runs it under `epoch`; its heartbeat assignments list it.
    case active
    /// `owner` was told to stop (its heartbeat assignments no longer list the partition). It may still
    /// write its final checkpoint and reports under `epoch`, then calls `/rpc/release`; `target` gets the
    /// partition after that (see `AssignmentPlanner` for every way a handoff completes).
    case releasing
}
