import CRdKafka
import Foundation

/// Restarts librdkafka's fetching as soon as the application has drained the consumer queue,
/// instead of up to a second later.
///
/// librdkafka 2.0 (Debian 12's) stops fetching a partition while the consumer queue holds
/// `queued.min.messages` records or `queued.max.messages.kbytes`, and looks again only when the
/// broker's thread next wakes up: on a request or response, else after 1 s (librdkafka#2879,
/// made configurable in 2.2 as `fetch.queue.backoff.ms`). A consumer that processes more slowly
/// than the broker serves, which is any real one catching up on a backlog, fills the queue and
/// then idles most of that second: the worker ran at 0.4 M trades/s with a 16 MiB queue and
/// 2.4 M/s with an unbounded one. Any request wakes a broker's thread, so `wake(partitions:)`
/// sends the cheapest there is, a watermark query (ListOffsets), for one partition per leader.
///
/// Requests block for their round trip, so they run on a thread of this object; `wake` only
/// sets a flag, and wake-ups closer than `minimumInterval` are merged.
public final class KafkaFetchWaker: @unchecked Sendable {
    private let handle: KafkaHandle
    private let topic: String
    private let minimumInterval: Duration
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var pending: Set<Int32> = []
    private var running = true
    private var finished = false
    private var wakeups = 0
    // The waker thread's own.
    private var leaders: [Int32: Int32] = [:]
    private var leadersAt: ContinuousClock.Instant?

    init(handle: KafkaHandle, topic: String, minimumInterval: Duration = .milliseconds(2)) {
        self.handle = handle
        self.topic = topic
        self.minimumInterval = minimumInterval
        Thread.start(named: "vigil-fetchwake") { [self] in run() }
    }

    /// Asks the leaders of `partitions` to look at fetching again. Never blocks.
    public func wake(partitions: some Sequence<Int32>) {
        condition.lock()
        pending.formUnion(partitions)
        condition.signal()
        condition.unlock()
    }

    /// Wake-ups sent so far (each one request per leader).
    public var sent: Int {
        condition.lock()
        defer { condition.unlock() }
        return wakeups
    }

    /// Stops the thread; returns once it has (at most one request's timeout). Call before the
    /// consumer closes.
    public func stop() {
        condition.lock()
        running = false
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    private func run() {
        let clock = ContinuousClock()
        var last = clock.now - minimumInterval
        while true {
            condition.lock()
            while pending.isEmpty && running { condition.wait() }
            guard running else {
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let partitions = pending
            pending.removeAll()
            wakeups += 1
            condition.unlock()

            let wait = last + minimumInterval - clock.now
            if wait > .zero {
                Thread.sleep(forTimeInterval: Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18)
            }
            last = clock.now
            for partition in onePerLeader(partitions) {
                var low: Int64 = -1
                var high: Int64 = -1
                _ = rd_kafka_query_watermark_offsets(handle.pointer, topic, partition, &low, &high, 500)
            }
        }
    }

    /// One partition of `partitions` per leader broker (leaders refreshed every 30 s; a partition
    /// whose leader is unknown is woken on its own).
    private func onePerLeader(_ partitions: Set<Int32>) -> [Int32] {
        if leadersAt.map({ ContinuousClock.now - $0 > .seconds(30) }) ?? true {
            leaders = (try? KafkaMetadata.leaders(handle, topic: topic, timeoutMs: 1_000)) ?? [:]
            leadersAt = .now
        }
        var seen: Set<Int32> = []
        return partitions.sorted().filter { partition in
            guard let leader = leaders[partition] else { return true }
            return seen.insert(leader).inserted
        }
    }
}
