import Protocol

/// Decides which live worker owns each partition: a pure function of the current assignments,
/// the set of live workers and the time, with no I/O (the `CoordinatorNode` persists and applies it).
///
/// **Target owners** are
/// - *balanced*: partition counts of live workers differ by at most one;
/// - *sticky*: a partition stays with its (live) holder unless balance needs to move it, and the
///   number moved is the minimum (the extra partition of an uneven split goes to the workers
///   already holding the most); a partition being handed off counts as held by its target;
/// - *deterministic*: ties are broken by worker id, then by partition number.
///
/// **Transitions** from the current assignment to the target owner `X`:
/// - held by `X` already: unchanged (a handoff away from `X` that is no longer needed is cancelled,
///   and `X` keeps its epoch: nobody else ever owned it in between);
/// - held by a *live* worker `A != X` that was told it owns it (`announced`): **handoff**. The
///   partition becomes `releasing` (owner `A`, same epoch, target `X`); `A`'s heartbeat answer no
///   longer lists it, so `A` stops it, writes its final checkpoint and releases. `X` gets it with
///   `epoch + 1` when the first of these happens:
///   1. `A` calls `/rpc/release` for it (`release(_:partition:by:epoch:live:now:announced:)`);
///   2. `A` is no longer live (down, or forgotten): the next `plan` moves it straight to `X`;
///   3. the handoff is older than `handoffTimeoutMs`: the next `plan` moves it to `X` anyway.
///      `A` is fenced by the epoch bump, so a wedged owner cannot write after that.
///   A heartbeat of `A` that no longer lists the partition does NOT complete the handoff: a worker
///   drops a stopped task from its heartbeat before its final checkpoint and release (queued
///   behind its reports) have necessarily arrived, and completing early would fence that final
///   checkpoint and make `X` replay from an older one.
/// - held by a live worker that was never told it owns it (not `announced`: no heartbeat answer
///   listed it under this epoch, so it cannot be running it): straight to `X` with `epoch + 1`.
///   This is what makes two workers starting together split the partitions at once.
/// - unowned, or held by a worker that is not live: straight to `X` with `epoch + 1`.
/// - no live worker at all: `unassigned`, epoch unchanged (the next owner gets `epoch + 1`).
///
/// **Leaving workers** (`leaving`: deregistered, still heartbeating) are never targets, but what
/// they hold is handed off like a live owner's, so their final checkpoints are kept: `releasing`
/// towards a live worker, or, when no live worker is left, towards nobody (`target == nil`): the
/// release then leaves the partition `unassigned` with its final checkpoint stored.
public struct AssignmentPlanner: Sendable {
    /// Partitions `0..<partitionCount` are planned; assignments outside that range are dropped.
    public var partitionCount: Int32
    /// How long a live owner may take to release a partition it was asked to give up.
    public var handoffTimeoutMs: Int64

    public init(partitionCount: Int32, handoffTimeoutMs: Int64) {
        precondition(partitionCount >= 0, "partition count must not be negative")
        self.partitionCount = partitionCount
        self.handoffTimeoutMs = handoffTimeoutMs
    }

    /// The new assignments for `live` workers at time `now`, and what changed. Idempotent: planning
    /// the result again with the same workers (before any handoff times out) changes nothing.
    ///
    /// `announced` holds the (partition, epoch) pairs whose owner has been told about them; nil
    /// means all of them (the safe assumption, e.g. after a coordinator restart). `leaving` are
    /// workers that still own partitions but take no new ones (see "Leaving workers").
    public func plan(_ current: [PartitionAssignment], live: Set<String>, leaving: Set<String> = [], now: Int64, announced: Set<Assignment>? = nil) -> AssignmentPlan {
        var rows = normalized(current)
        let live = live.subtracting(leaving)
        let owners = targetOwners(rows, live: live, now: now)
        var changes: [AssignmentChange] = []
        for index in rows.indices {
            let told = announced?.contains(Assignment(partition: rows[index].partition, epoch: rows[index].epoch)) ?? true
            if let change = transition(&rows[index], to: owners[index], alive: live.union(leaving), now: now, announced: told) {
                changes.append(change)
            }
        }
        return AssignmentPlan(assignments: rows, changes: changes)
    }

    /// Applies `worker`'s release of `partition` under `epoch`, then replans.
    ///
    /// Accepted only from the current owner under the current epoch of a `releasing` partition
    /// (the handoff then completes: the target, or else whoever the planner picks, gets `epoch + 1`).
    /// A release of an `active` partition is refused: the worker was not asked to give it up, and the
    /// planner would hand it straight back. Returns `nil` when refused.
    public func release(_ current: [PartitionAssignment], partition: Int32, by worker: String, epoch: Int64, live: Set<String>, leaving: Set<String> = [], now: Int64, announced: Set<Assignment>? = nil) -> AssignmentPlan? {
        var rows = normalized(current)
        guard let index = rows.firstIndex(where: { $0.partition == partition }),
              rows[index].state == .releasing, rows[index].permitsWrite(by: worker, epoch: epoch)
        else { return nil }
        let old = rows[index]
        let change: AssignmentChange
        if let target = old.target, live.contains(target), !leaving.contains(target) {
            rows[index] = PartitionAssignment(partition: partition, owner: target, epoch: epoch + 1, state: .active)
            change = AssignmentChange(kind: .released, partition: partition, from: worker, to: target, epoch: epoch + 1)
        } else {
            // The target left meanwhile: the partition is free, and the plan below places it.
            rows[index] = PartitionAssignment(partition: partition, owner: nil, epoch: epoch, state: .unassigned)
            change = AssignmentChange(kind: .released, partition: partition, from: worker, to: nil, epoch: epoch)
        }
        let replanned = plan(rows, live: live, leaving: leaving, now: now, announced: announced)
        return AssignmentPlan(assignments: replanned.assignments, changes: [change] + replanned.changes)
    }

    // MARK: - Internals

    /// One row per partition in `0..<partitionCount`, in order.
    private func normalized(_ current: [PartitionAssignment]) -> [PartitionAssignment] {
        var byPartition: [Int32: PartitionAssignment] = [:]
        for row in current where row.partition >= 0 && row.partition < partitionCount {
            byPartition[row.partition] = row
        }
        return (0..<partitionCount).map { byPartition[$0] ?? .unowned($0) }
    }

    private func handoffTimedOut(_ row: PartitionAssignment, now: Int64) -> Bool {
        guard row.state == .releasing, let since = row.releasingSinceMs else { return false }
        return now - since >= handoffTimeoutMs
    }

    /// The live worker each partition should end up with (`nil` only when nobody is live).
    private func targetOwners(_ rows: [PartitionAssignment], live: Set<String>, now: Int64) -> [String?] {
        guard !live.isEmpty else { return rows.map { _ in nil } }

        // Who holds each partition, for stickiness: a handoff's live target, else a live owner.
        struct Held { var index: Int; var pendingTarget: Bool }
        var held: [String: [Held]] = [:]
        for (index, row) in rows.enumerated() {
            if row.state == .releasing, let target = row.target, live.contains(target) {
                held[target, default: []].append(Held(index: index, pendingTarget: true))
            } else if let owner = row.owner, live.contains(owner) {
                held[owner, default: []].append(Held(index: index, pendingTarget: false))
            }
        }

        // Quotas: the `extra` larger shares go to the workers holding the most, so fewest move.
        let workers = live.sorted()
        let base = Int(partitionCount) / workers.count
        let extra = Int(partitionCount) % workers.count
        let byHoldings = workers.sorted { a, b in
            let (ha, hb) = (held[a]?.count ?? 0, held[b]?.count ?? 0)
            return ha != hb ? ha > hb : a < b
        }
        var quota: [String: Int] = [:]
        for (rank, worker) in byHoldings.enumerated() {
            quota[worker] = base + (rank < extra ? 1 : 0)
        }

        // Each worker keeps what it holds up to its quota, partitions it already runs first.
        var owners = [String?](repeating: nil, count: rows.count)
        var deficit: [String: Int] = [:]
        for worker in workers {
            let mine = (held[worker] ?? []).sorted { a, b in
                a.pendingTarget != b.pendingTarget ? !a.pendingTarget : a.index < b.index
            }
            let keep = min(mine.count, quota[worker] ?? 0)
            for item in mine.prefix(keep) { owners[item.index] = worker }
            deficit[worker] = (quota[worker] ?? 0) - keep
        }

        // The rest fill the deficits, in worker id order, lowest partitions first.
        var pool = rows.indices.filter { owners[$0] == nil }[...]
        for worker in workers {
            for _ in 0..<(deficit[worker] ?? 0) {
                guard let index = pool.popFirst() else { break }
                owners[index] = worker
            }
        }
        return owners
    }

    /// `alive`: live and leaving workers (an owner that can still hand off).
    private func transition(_ row: inout PartitionAssignment, to target: String?, alive: Set<String>, now: Int64, announced: Bool) -> AssignmentChange? {
        let old = row
        if let target, old.owner == target {
            guard old.state == .releasing else { return nil }
            row = PartitionAssignment(partition: old.partition, owner: target, epoch: old.epoch, state: .active)
            return AssignmentChange(kind: .handoffCancelled, partition: old.partition, from: old.target, to: target, epoch: old.epoch)
        }
        let ownerLive = old.owner.map { alive.contains($0) } ?? false
        // A live owner hands off; with no target (only leaving workers are left) it hands off to
        // nobody, so that its final checkpoint is still accepted.
        if ownerLive && announced && !handoffTimedOut(old, now: now) {
            if old.state == .releasing && old.target == target { return nil }
            let since = old.state == .releasing ? (old.releasingSinceMs ?? now) : now
            row = PartitionAssignment(partition: old.partition, owner: old.owner, epoch: old.epoch, state: .releasing, target: target, releasingSinceMs: since)
            return AssignmentChange(kind: old.state == .releasing ? .handoffRetargeted : .handoffStarted, partition: old.partition, from: old.owner, to: target, epoch: old.epoch)
        }
        guard let target else {
            guard let owner = old.owner else { return nil }
            row = PartitionAssignment(partition: old.partition, owner: nil, epoch: old.epoch, state: .unassigned)
            return AssignmentChange(kind: .unassigned, partition: old.partition, from: owner, to: nil, epoch: old.epoch)
        }
        let kind: AssignmentChange.Kind
        if old.owner == nil {
            kind = .assigned
        } else if !ownerLive {
            kind = .ownerDown
        } else if announced {
            kind = .handoffTimedOut
        } else {
            kind = .neverStarted
        }
        row = PartitionAssignment(partition: old.partition, owner: target, epoch: old.epoch + 1, state: .active)
        return AssignmentChange(kind: kind, partition: old.partition, from: old.owner, to: target, epoch: old.epoch + 1)
    }
}

/// The planner's answer: every partition's assignment, and the changes that led to it (for logs,
/// persistence and tests).
public struct AssignmentPlan: Sendable, Equatable {
    /// One row per partition, in partition order.
    public var assignments: [PartitionAssignment]
    /// In the order they were applied; empty when nothing changed.
    public var changes: [AssignmentChange]

    public init(assignments: [PartitionAssignment], changes: [AssignmentChange]) {
        self.assignments = assignments
        self.changes = changes
    }

    /// The partitions and epochs `worker` should run now (its heartbeat answer): active ones only,
    /// so an owner whose partition is being handed off is told to stop it.
    public func assignments(for worker: String) -> [Assignment] {
        Self.active(assignments, for: worker)
    }

    static func active(_ rows: [PartitionAssignment], for worker: String) -> [Assignment] {
        rows.filter { $0.state == .active && $0.owner == worker }
            .map { Assignment(partition: $0.partition, epoch: $0.epoch) }
    }
}

/// One change of a partition's assignment.
public struct AssignmentChange: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// An unowned partition got its first (or next) owner, `epoch + 1`.
        case assigned
        /// The owner is not live (down or forgotten): moved straight to `to`, `epoch + 1`.
        case ownerDown = "owner_down"
        /// A live owner was asked to give the partition up to `to`; epoch unchanged until it does.
        case handoffStarted = "handoff_started"
        /// A pending handoff now goes to a different next owner.
        case handoffRetargeted = "handoff_retargeted"
        /// A pending handoff is no longer needed; the owner keeps the partition and its epoch.
        case handoffCancelled = "handoff_cancelled"
        /// The owner released the partition (`/rpc/release`); `to` got it with `epoch + 1`.
        case released
        /// The live owner was never told it had the partition, so it cannot be running it: moved
        /// straight to `to`, `epoch + 1`.
        case neverStarted = "never_started"
        /// The owner did not release in time; `to` got it with `epoch + 1`, fencing the owner.
        case handoffTimedOut = "handoff_timed_out"
        /// No live worker is left: the partition has no owner.
        case unassigned
    }

    public var kind: Kind
    public var partition: Int32
    public var from: String?
    public var to: String?
    /// The partition's epoch after the change.
    public var epoch: Int64

    public init(kind: Kind, partition: Int32, from: String?, to: String?, epoch: Int64) {
        self.kind = kind
        self.partition = partition
        self.from = from
        self.to = to
        self.epoch = epoch
    }

    public var description: String {
        "partition \(partition) \(kind.rawValue): \(from ?? "-") -> \(to ?? "-") at epoch \(epoch)"
    }

    /// True for the changes that give the partition a new owner under a new epoch (when `to` is
    /// set): `assigned`, `owner_down`, `released`, `never_started`, `handoff_timed_out`.
    public var movesOwner: Bool {
        switch kind {
        case .assigned, .ownerDown, .released, .neverStarted, .handoffTimedOut: true
        case .handoffStarted, .handoffRetargeted, .handoffCancelled, .unassigned: false
        }
    }
}
