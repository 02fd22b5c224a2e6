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

/// A bounded FIFO from the consume thread to the sender task.
///
/// The consume thread checks `isFull` before polling Kafka and stops pulling while it is full, so
/// a slow or unreachable coordinator slows consumption instead of growing memory (backpressure).
final class Outbox: Sendable {
    private struct State {
        var items = Deque<OutboxItem>()
        var waiter: CheckedContinuation<OutboxItem?, Never>?
        var closed = false
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { state.withLock { $0.items.count } }
    var isFull: Bool { count >= capacity }

    /// Appends an item. Never blocks: the consume thread is expected to respect `isFull`;
    /// a few items over capacity (a final checkpoint, a release) are allowed.
    func push(_ item: OutboxItem) {
        let waiter: CheckedContinuation<OutboxItem?, Never>? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.items.append(item)
            return nil
        }
        waiter?.resume(returning: item)
    }

    /// The next item, waiting for one; nil once closed and drained.
    func next() async -> OutboxItem? {
        await withCheckedContinuation { continuation in
            let ready: OutboxItem?? = state.withLock { state in
                if let item = Self.popMerged(&state.items) { return .some(item) }
                if state.closed { return .some(nil) }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Pops the head. When it is a report, the reports of the same partition and epoch queued
    /// behind it, up to that partition's next checkpoint or release, are merged into it: one RPC
    /// instead of many when the coordinator falls behind. Order within a partition is kept;
    /// partitions are independent of each other.
    private static func popMerged(_ items: inout Deque<OutboxItem>) -> OutboxItem? {
        guard case .report(var merged)? = items.first else { return items.popFirst() }
        items.removeFirst()
        var index = items.startIndex
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
        state.withLock { state in
            state.items.removeAll { $0.partition == partition && $0.epoch == epoch }
        }
    }

    /// Drops everything queued (the worker lost its lease: nothing it holds may be written).
    func discardAll() {
        state.withLock { $0.items.removeAll() }
    }

    func close() {
        let waiter = state.withLock { state -> CheckedContinuation<OutboxItem?, Never>? in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }
}
