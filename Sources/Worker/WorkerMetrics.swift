import Foundation
import Logging
import Metrics
import Prometheus
import Protocol
import Synchronization

/// A worker's operator view: its Prometheus metrics (served by `WorkerMetricsServer` at
/// `/metrics`) and the progress lines of its log.
///
/// Nothing here runs per trade. The consume thread keeps cumulative counters in each partition's
/// processor; `heartbeat(_:outboxDepth:taskEvents:)` (once per heartbeat) adds what grew since
/// the previous call to the Prometheus counters and sets the gauges.
///
/// The counters count what this process consumed, nothing else. A partition's stats are
/// cumulative across owners (restored from checkpoints), so each task (partition and epoch) is
/// counted from its baseline, the stats it started with (`PartitionTaskEvent.started`), and up
/// to its final stats when it stops (`PartitionTaskEvent.stopped`), even if no heartbeat listed
/// it in between. Records re-processed after a restart from a checkpoint count again, as they are
/// processed again; summed over the workers of a cluster that never lost work, the consumed
/// counters add up to the records in the topic. A task whose start was not reported is counted
/// from zero. Every metric has HELP text and a base unit, so the output passes
/// `promtool check metrics`.
///
/// Every `progressIntervalMs` a heartbeat also logs one line per running partition: records in/s
/// and processed/s, lag, and watermark age. Thread-safe.
public final class WorkerMetrics: Sendable {
    /// What `/metrics` renders; `vigil worker` also points swift-metrics at it.
    public let registry: PrometheusCollectorRegistry
    private let logger: Logger
    private let state: Mutex<State>
    private let wallClock: @Sendable () -> Int64

    private struct State {
        /// Per running task: its stats as far as they are counted (first its baseline).
        var counted: [TaskKey: Totals] = [:]
        var cpuSeconds: Double = 0
        var log = WorkerMetricsProgressLog()
    }

    /// `wallClock` (ms since the Unix epoch) ages watermarks and paces the progress lines.
    public init(
        logger: Logger, progressIntervalMs: Int64 = 5_000, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        wallClock: @escaping @Sendable () -> Int64 = { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
    ) {
        self.registry = registry
        self.logger = logger
        self.wallClock = wallClock
        var log = WorkerMetricsProgressLog()
        log.intervalMs = progressIntervalMs
        state = Mutex(State(log: log))
        _ = registry.makeGauge(descriptor: Names.partitions)
        _ = registry.makeGauge(descriptor: Names.outboxDepth)
        _ = registry.makeCounter(descriptor: Names.writesRejected)
    }

    /// Makes swift-metrics record into `registry`. Call once per process.
    public func bootstrapSwiftMetrics() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    public func render() -> String {
        registry.emitToString()
    }

    // MARK: - Hooks

    /// A heartbeat is about to be sent with these partitions: counters, gauges, and (when due) the
    /// progress lines.
    ///
    /// `taskEvents` are the tasks started and stopped since the previous call, in order, read
    /// together with `request.partitions` (a task stopped there is not running in the request,
    /// unless started again after). A started task sets its baseline; a stopped one has what it
    /// consumed since it was last counted added, and is forgotten. A running task missing from
    /// `request.partitions` is forgotten too.
    public func heartbeat(_ request: HeartbeatRequest, outboxDepth: Int = 0, taskEvents: [PartitionTaskEvent] = []) {
        let now = wallClock()
        let (grown, lines) = state.withLock { state -> ([(partition: Int32, amounts: Totals)], [String]) in
            var grown: [(partition: Int32, amounts: Totals)] = []
            func count(_ p: PartitionProgress) -> TaskKey {
                let key = TaskKey(p)
                let before = state.counted[key] ?? Totals()
                let amounts = Totals(p).grown(since: before)
                grown.append((p.partition, amounts))
                state.counted[key] = before.adding(amounts)
                return key
            }
            for event in taskEvents {
                switch event {
                case .started(let p):
                    state.counted[TaskKey(p)] = Totals(p)
                case .stopped(let p):
                    state.counted[count(p)] = nil
                }
            }
            let running = Set(request.partitions.map(count))
            state.counted = state.counted.filter { running.contains($0.key) }
            let cpu = max(0, request.cpuSeconds - state.cpuSeconds)
            state.cpuSeconds = max(state.cpuSeconds, request.cpuSeconds)
            registry.makeCounter(descriptor: Names.cpu).increment(by: cpu)
            return (grown, state.log.lines(request.partitions, now: now))
        }
        for (partition, amounts) in grown {
            let labels = [("partition", String(partition))]
            for (descriptor, amount) in [
                (Names.consumed, amounts.consumed), (Names.processed, amounts.windowed), (Names.late, amounts.late),
                (Names.malformed, amounts.malformed), (Names.windowsClosed, amounts.windowsClosed), (Names.anomalies, amounts.anomalies),
                (Names.lost, amounts.lost),
            ] {
                let counter = registry.makeCounter(descriptor: descriptor, labels: labels)
                if amount > 0 { counter.increment(by: amount) }
            }
        }
        for p in request.partitions {
            let labels = [("partition", String(p.partition))]
            if p.logEndOffset >= 0 && p.nextOffset >= 0 {
                registry.makeGauge(descriptor: Names.lag, labels: labels).set(Double(max(0, p.logEndOffset - p.nextOffset)))
            }
            if p.watermarkMs != .min {
                registry.makeGauge(descriptor: Names.watermarkDelay, labels: labels).set(Double(now - p.watermarkMs) / 1_000)
            }
            registry.makeGauge(descriptor: Names.epoch, labels: labels).set(Double(p.epoch))
            if let symbols = p.symbols {
                registry.makeGauge(descriptor: Names.symbols, labels: labels).set(Double(symbols))
            }
        }
        registry.makeGauge(descriptor: Names.partitions).set(Double(request.partitions.count))
        registry.makeGauge(descriptor: Names.outboxDepth).set(Double(outboxDepth))
        registry.makeGauge(descriptor: Names.rss).set(Double(request.rssBytes))
        for line in lines {
            logger.info("\(line)")
        }
    }

    /// A call to the coordinator completed (or failed) after `duration`.
    public func rpc(_ path: String, duration: Duration, ok: Bool) {
        registry.makeDurationHistogram(descriptor: Names.rpcDuration, labels: [("path", path), ("outcome", ok ? "ok" : "error")], buckets: Buckets.rpc)
            .record(duration)
    }

    /// A checkpoint was sent; `accepted` is the coordinator's answer.
    public func checkpoint(_ request: CheckpointRequest, accepted: Bool) {
        guard accepted else { return }
        registry.makeValueHistogram(descriptor: Names.checkpointSize, buckets: Buckets.checkpointBytes).record(Double(request.state.count))
        registry.makeDurationHistogram(descriptor: Names.checkpointDuration, buckets: Buckets.checkpointDuration)
            .record(.microseconds(Int64((request.durationMs * 1_000).rounded())))
    }

    /// The coordinator refused a write (stale epoch): the partition moved away.
    public func writeRejected() {
        registry.makeCounter(descriptor: Names.writesRejected).increment()
    }

    // MARK: - Names

    /// One task: a partition under one epoch (a partition that comes back runs under a new one).
    struct TaskKey: Hashable {
        var partition: Int32, epoch: Int64

        init(_ p: PartitionProgress) {
            partition = p.partition
            epoch = p.epoch
        }
    }

    /// A task's cumulative counts (`lost`: offsets in its lost ranges), or amounts to add to the
    /// counters.
    struct Totals: Equatable {
        var consumed: Int64 = 0, windowed: Int64 = 0, late: Int64 = 0, malformed: Int64 = 0
        var windowsClosed: Int64 = 0, anomalies: Int64 = 0, lost: Int64 = 0

        init() {}

        init(_ p: PartitionProgress) {
            consumed = p.consumed
            windowed = p.windowed
            late = p.late
            malformed = p.malformed
            windowsClosed = p.windowsClosed
            anomalies = p.anomalies
            lost = p.lost.reduce(0) { $0 + ($1.to - $1.from) }
        }

        /// What grew since `base`, field by field; a field that went down grew by nothing.
        func grown(since base: Totals) -> Totals {
            combined(base) { max(0, $0 - $1) }
        }

        func adding(_ amounts: Totals) -> Totals {
            combined(amounts, +)
        }

        private func combined(_ other: Totals, _ op: (Int64, Int64) -> Int64) -> Totals {
            var result = Totals()
            result.consumed = op(consumed, other.consumed)
            result.windowed = op(windowed, other.windowed)
            result.late = op(late, other.late)
            result.malformed = op(malformed, other.malformed)
            result.windowsClosed = op(windowsClosed, other.windowsClosed)
            result.anomalies = op(anomalies, other.anomalies)
            result.lost = op(lost, other.lost)
            return result
        }
    }

    enum Buckets {
        static let rpc: [Duration] = [
            .microseconds(250), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        static let checkpointDuration: [Duration] = [
            .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50),
            .milliseconds(100), .milliseconds(500), .seconds(1),
        ]
        static let checkpointBytes: [Double] = [1_024, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864]
    }

    enum Names {
        private static func name(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "vigil_worker", metricName: name, unitName: unit, helpText: help)
        }

        static var consumed: MetricNameDescriptor { name("records_consumed", "total", "Records taken from Kafka, by partition.") }
        static var processed: MetricNameDescriptor { name("records_processed", "total", "On-time trades applied to windows, by partition.") }
        static var late: MetricNameDescriptor { name("records_late", "total", "Late trades (older than the partition's watermark) counted and set aside, by partition.") }
        static var malformed: MetricNameDescriptor { name("records_malformed", "total", "Records that are not trades, by partition.") }
        static var windowsClosed: MetricNameDescriptor { name("windows_closed", "total", "Windows closed and evaluated, by partition.") }
        static var anomalies: MetricNameDescriptor { name("anomalies_detected", "total", "Anomalies detected (suppressed repeats included), by partition.") }
        static var lost: MetricNameDescriptor { name("offsets_lost", "total", "Offsets the broker no longer had when the partition needed them (lost to retention), by partition.") }
        static var lag: MetricNameDescriptor { name("partition_lag", "records", "Records between the partition's next offset and its log end.") }
        static var watermarkDelay: MetricNameDescriptor { name("watermark_delay", "seconds", "Wall-clock time minus the partition's event-time watermark (includes the allowed lateness).") }
        static var epoch: MetricNameDescriptor { name("partition_epoch", "", "Assignment epoch the partition runs under.") }
        static var symbols: MetricNameDescriptor { name("symbols", "", "Symbols with window state, by partition.") }
        static var partitions: MetricNameDescriptor { name("partitions", "", "Partitions this worker runs.") }
        static var outboxDepth: MetricNameDescriptor { name("outbox_items", "", "Reports, checkpoints and releases waiting to be sent to the coordinator.") }
        static var rpcDuration: MetricNameDescriptor { name("rpc_duration", "seconds", "Round trip of calls to the coordinator, by path and outcome.") }
        static var checkpointSize: MetricNameDescriptor { name("checkpoint_size", "bytes", "Size of accepted checkpoint states.") }
        static var checkpointDuration: MetricNameDescriptor { name("checkpoint_duration", "seconds", "Time to snapshot and encode an accepted checkpoint.") }
        static var writesRejected: MetricNameDescriptor { name("writes_rejected", "total", "Reports, checkpoints and releases the coordinator refused (stale epoch: the partition moved).") }
        static var cpu: MetricNameDescriptor { name("cpu", "seconds_total", "User and system CPU time of the worker process.") }
        static var rss: MetricNameDescriptor { name("resident_memory", "bytes", "Resident memory of the worker process.") }
    }
}

extension OutboxItem {
    /// The RPC path the item is sent to (the `path` label of the RPC latency metric).
    var path: String {
        switch self {
        case .report: RPCPath.report
        case .checkpoint: RPCPath.checkpoint
        case .release: RPCPath.release
        }
    }
}
