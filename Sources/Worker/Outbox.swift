import Protocol
import Synchronization
import DequeModule

/// What a worker sends to the coordinator, in the order it must arrive: a checkpoint is stored
/// only after every report before it, so a checkpoint never covers an anomaly the coordinator
/// has not stored.
enum OutboxItem: Sendable {
    case report(ReportRequest)
    case checkpoint(CheckpointRequest)
    case release(ReleaseRequest)

    var partition: Int32 {
        switch self {
        case .report(let r): r.partition
        case .checkpoint(let c): c.partition
        case .release(let r): r.partition
        }
    }

    var epoch: Int64 {
        switch self {
        case .report(let r): r.epoch
        case .checkpoint(let c): c.epoch
        case .release(let r): r.epoch
        }
    }
}

/// A bounded queue from the consume thread to the sender, ordered per partition.
///
/// The consume thread checks `isFull` before polling Kafka and stops pulling while it is full, so
/// a slow or unreachable coordinator slows consumption instead of growing memory (backpressure).
///
/// The sender may deliver several partitions at once: `next()` hands out the oldest item of a
/// partition that has nothing in flight and marks that partition in flight until `done(_:)`.
/// Within a partition items go one at a time in queue order (reports, then the checkpoint that
/// covers them, then a release), which is all correctness needs; partitions are independent, so
/// one window boundary's reports from every partition travel together instead of in a line.
final class Outbox: Sendable {
    private struct State {
        var items = Deque<OutboxItem>()
        var inFlight: Set<Int32> = []
        var waiter: CheckedContinuation<OutboxItem?, Never>?
        var closed = false

        /// What a waiting `next()` should get now: an item, nil (closed and drained), or nothing yet.
        mutating func ready() -> OutboxItem?? {
            if let item = Outbox.popMerged(&items, skipping: inFlight) {
                inFlight.insert(item.partition)
                return .some(item)
            }
            return closed && items.isEmpty ? .some(nil) : nil
        }

        /// Wakes the waiter if something is ready for it.
        mutating func resumable() -> (CheckedContinuation<OutboxItem?, Never>, OutboxItem?)? {
            guard let waiter, let ready = ready() else { return nil }
            self.waiter = nil
            return (waiter, ready)
        }
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { state.withLock { $0.items.count } }
    var isFull: Bool { count >= capacity }
    /// Nothing queued and nothing in flight.
    var isIdle: Bool { state.withLock { $0.items.isEmpty && $0.inFlight.isEmpty } }

    /// Appends an item. Never blocks: the consume thread is expected to respect `isFull`;
    /// a few items over capacity (a final checkpoint, a release) are allowed.
    func push(_ item: OutboxItem) {
        update { $0.items.append(item) }
    }

    /// The next item of a partition with nothing in flight, waiting for one; nil once closed and
    /// drained. The caller must call `done(_:)` with the item's partition after delivering it.
    func next() async -> OutboxItem? {
        await withCheckedContinuation { continuation in
            let ready: OutboxItem?? = state.withLock { state in
                if let ready = state.ready() { return ready }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// The item of `partition` that `next()` handed out is delivered (or given up): the
    /// partition's next item may go.
    func done(_ partition: Int32) {
        update { $0.inFlight.remove(partition) }
    }

    /// Pops the oldest item whose partition is not in `skipping`. When it is a report, the
    /// reports of the same partition and epoch queued behind it, up to that partition's next
    /// checkpoint or release, are merged into it: one RPC instead of many when the coordinator
    /// falls behind. Order within a partition is kept; partitions are independent of each other.
    fileprivate static func popMerged(_ items: inout Deque<OutboxItem>, skipping: Set<Int32>) -> OutboxItem? {
        guard var index = items.firstIndex(where: { !skipping.contains($0.partition) }) else { return nil }
        let head = items.remove(at: index)
        guard case .report(var merged) = head else { return head }
        while index < items.endIndex {
            let item = items[index]
            guard item.partition == merged.partition else {
                index = items.index(after: index)
                continue
            }
            guard case .report(let next) = item, next.epoch == merged.epoch else { break }
            merged.anomalies += next.anomalies
            merged.windows += next.windows
            merged.lateEvents += next.lateEvents
            merged.malformed += next.malformed
            merged.lost += next.lost
            items.remove(at: index)
        }
        return .report(merged)
    }

    /// Drops queued items of one partition under one epoch (its writes were rejected as stale).
    func discard(partition: Int32, epoch: Int64) {
        update { $0.items.removeAll { $0.partition == partition && $0.epoch == epoch } }
    }

    /// Drops everything queued (the worker lost its lease: nothing it holds may be written).
    func discardAll() {
        update { $0.items.removeAll() }
    }

    /// No more items will come: `next()` returns nil once the queue is empty.
    func close() {
        update { $0.closed = true }
    }

    private func update(_ change: (inout State) -> Void) {
        let wake = state.withLock { state in
            change(&state)
            return state.resumable()
        }
        if let (waiter, item) = wake { waiter.resume(returning: item) }
    }
}
