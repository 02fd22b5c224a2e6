import Metrics
import Detection
import Prometheus
import Protocol
import Synchronization

/// The coordinator's Prometheus metrics (`GET /metrics`), in their own registry.
///
/// Events are counted where they happen (a stored report, a checkpoint, a served request, an
/// alert); cluster state (workers, partitions, lag, watermarks) is copied into gauges from the
/// status when `/metrics` is scraped, so a scrape always shows the state of that moment. Every
/// metric has HELP text and a base unit, so the output passes `promtool check metrics`.
///
/// Per-partition counters come from the cumulative counts workers send with heartbeats: each
/// heartbeat adds what grew since the last one. When a partition's count goes down (a new owner
/// restored an older checkpoint), the counter does not go back: the re-processed records are
/// counted again, as they are processed again.
///
/// Thread-safe; cheap enough to call per request or report, never per trade.
public final class CoordinatorMetrics: Sendable {
    /// What `/metrics` renders. `vigil coordinator` also points swift-metrics at it
    /// (`MetricsSystem`), so metrics of libraries using swift-metrics appear too.
    public let registry: PrometheusCollectorRegistry
    private let deltas = PartitionCounterDeltas()

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        // Families that must show (with zero) before the first event, so dashboards and alert
        // rules see them at once.
        _ = registry.makeCounter(descriptor: Names.reportsRejected)
        _ = registry.makeCounter(descriptor: Names.checkpointsRejected)
        _ = registry.makeCounter(descriptor: Names.windowsStored)
        _ = registry.makeCounter(descriptor: Names.lateEventsStored)
    }

    /// Makes swift-metrics (`Counter(label:)`, `Timer(label:)`, ...) record into `registry`, for
    /// libraries that use it. Call once per process, before any such metric is created.
    /// Makes this registry the process's swift-metrics backend. swift-metrics allows one
    /// bootstrap per process: a second coordinator in the same process (the benchmark runs
    /// several) keeps the first one's backend, and its own `/metrics` still renders its registry.
    public func bootstrapSwiftMetrics() {
        let first = Self.bootstrapped.withLock { done in
            defer { done = true }
            return !done
        }
        if first {
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        }
    }

    private static let bootstrapped = Mutex(false)

    /// The Prometheus text exposition of every metric.
    public func render() -> String {
        registry.emitToString()
    }

    // MARK: - Events

    /// A report was stored: its windows and late events, and the anomalies that were new.
    /// `latenessMs` is the allowed lateness: the record that closed an anomaly's window had event
    /// time `detectedAtMs + latenessMs`, so detection latency is `now` minus that.
    func reportStored(_ report: ReportRequest, inserted: [Anomaly], latenessMs: Int64, now: Int64) {
        if !report.windows.isEmpty {
            registry.makeCounter(descriptor: Names.windowsStored).increment(by: Int64(report.windows.count))
        }
        if !report.lateEvents.isEmpty {
            registry.makeCounter(descriptor: Names.lateEventsStored).increment(by: Int64(report.lateEvents.count))
        }
        for anomaly in inserted {
            registry.makeCounter(descriptor: Names.anomalies, labels: [
                ("kind", anomaly.kind.rawValue), ("severity", anomaly.severity.rawValue),
                ("suppressed", anomaly.suppressed ? "true" : "false"),
            ]).increment()
            let latencyMs = max(0, now - (anomaly.detectedAtMs + latenessMs))
            registry.makeDurationHistogram(descriptor: Names.detectionLatency, buckets: Buckets.detectionLatency)
                .record(.milliseconds(latencyMs))
        }
    }

    func reportRejected() {
        registry.makeCounter(descriptor: Names.reportsRejected).increment()
    }

    /// A checkpoint was stored: its size, and how long the worker took to take it.
    func checkpointStored(_ summary: CheckpointSummary) {
        registry.makeValueHistogram(descriptor: Names.checkpointSize, buckets: Buckets.checkpointBytes).record(Double(summary.size))
        registry.makeDurationHistogram(descriptor: Names.checkpointDuration, buckets: Buckets.checkpointDuration)
            .record(.microseconds(Int64((summary.durationMs * 1_000).rounded())))
    }

    func checkpointRejected() {
        registry.makeCounter(descriptor: Names.checkpointsRejected).increment()
    }

    /// A request was served in `duration`. Paths are reduced to their route (`/v1/anomalies/{id}`),
    /// unknown ones to "other", so the label set stays small whatever clients ask.
    public func requestServed(method: String, path: String, duration: Duration) {
        registry.makeDurationHistogram(descriptor: Names.requestDuration, labels: [("route", Self.route(method: method, path: path))], buckets: Buckets.request)
            .record(duration)
    }

    /// Cumulative per-partition counts from an accepted heartbeat (see the type's notes).
    func heartbeatProgress(_ progress: PartitionProgress) {
        let labels = [("partition", String(progress.partition))]
        let grown = deltas.advance(progress)
        for (descriptor, amount) in [
            (Names.recordsConsumed, grown.consumed), (Names.recordsWindowed, grown.windowed),
            (Names.recordsLate, grown.late), (Names.recordsMalformed, grown.malformed),
            (Names.windowsClosed, grown.windowsClosed),
        ] {
            let counter = registry.makeCounter(descriptor: descriptor, labels: labels)
            if amount > 0 { counter.increment(by: amount) }
        }
    }

    /// An alert was delivered to the webhook.
    func alertDelivered() {
        registry.makeCounter(descriptor: Names.alertsDelivered).increment()
    }

    /// A delivery attempt failed; `permanent` when the webhook refused the alert for good.
    func alertFailed(permanent: Bool) {
        registry.makeCounter(descriptor: Names.alertFailures, labels: [("permanent", permanent ? "true" : "false")]).increment()
    }

    func alertsPending(_ count: Int) {
        registry.makeGauge(descriptor: Names.alertsPending).set(Double(count))
    }

    func retentionApplied(_ deleted: RetentionResult) {
        for (table, count) in [
            ("windows", deleted.windows), ("late_events", deleted.lateEvents), ("malformed_records", deleted.malformedRecords),
            ("anomalies", deleted.anomalies), ("history", deleted.history),
        ] {
            registry.makeCounter(descriptor: Names.retentionDeleted, labels: [("table", table)]).increment(by: Int64(count))
        }
    }

    // MARK: - State, at scrape time

    /// Copies the cluster's state into gauges.
    func update(from status: ClusterStatus) {
        for state in ["up", "suspect", "down", "restored"] {
            let count = status.workers.filter { $0.state == state }.count
            registry.makeGauge(descriptor: Names.workers, labels: [("state", state)]).set(Double(count))
        }
        registry.makeGauge(descriptor: Names.unowned).set(Double(status.partitions.filter { $0.owner == nil }.count))
        registry.makeGauge(descriptor: Names.problems).set(Double(status.problems.count))
        registry.makeGauge(descriptor: Names.anomaliesInStore).set(Double(status.anomalyCount))
        registry.makeGauge(descriptor: Names.startTime).set(Double(status.startedAtMs) / 1_000)
        for p in status.partitions {
            let labels = [("partition", String(p.partition))]
            if p.lag >= 0 { registry.makeGauge(descriptor: Names.lag, labels: labels).set(Double(p.lag)) }
            if p.logEndOffset >= 0 { registry.makeGauge(descriptor: Names.logEnd, labels: labels).set(Double(p.logEndOffset)) }
            if p.nextOffset >= 0 { registry.makeGauge(descriptor: Names.nextOffset, labels: labels).set(Double(p.nextOffset)) }
            if p.watermarkMs != .min {
                registry.makeGauge(descriptor: Names.watermarkDelay, labels: labels).set(Double(status.nowMs - p.watermarkMs) / 1_000)
            }
            if let seconds = p.lagSeconds {
                registry.makeGauge(descriptor: Names.lagSeconds, labels: labels).set(seconds)
            }
            registry.makeGauge(descriptor: Names.epoch, labels: labels).set(Double(p.epoch))
        }
    }

    // MARK: - Names

    /// The `route` label of a request: its route pattern, or "other".
    public static func route(method: String, path: String) -> String {
        switch path {
        case RPCPath.register, RPCPath.heartbeat, RPCPath.report, RPCPath.checkpoint, RPCPath.fetchCheckpoint, RPCPath.release,
             RPCPath.status, RPCPath.anomalies, RPCPath.symbols, RPCPath.metrics, "/":
            return "\(method) \(path)"
        default:
            break
        }
        let segments = path.split(separator: "/")
        if path.hasPrefix(RPCPath.anomalies + "/") {
            return segments.count == 4 && segments[3] == "ack" ? "\(method) /v1/anomalies/{id}/ack" : "\(method) /v1/anomalies/{id}"
        }
        if path.hasPrefix(RPCPath.symbols + "/"), segments.count == 4, segments[3] == "windows" {
            return "\(method) /v1/symbols/{symbol}/windows"
        }
        return "other"
    }

    enum Buckets {
        static let request: [Duration] = [
            .microseconds(250), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
        ]
        static let detectionLatency: [Duration] = [
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
            .seconds(30), .seconds(60), .seconds(300),
        ]
        static let checkpointDuration: [Duration] = [
            .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50),
            .milliseconds(100), .milliseconds(500), .seconds(1),
        ]
        static let checkpointBytes: [Double] = [1_024, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864]
    }

    enum Names {
        private static func name(_ name: String, _ unit: String = "", _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "vigil", metricName: name, unitName: unit, helpText: help)
        }

        static var anomalies: MetricNameDescriptor { name("anomalies_stored", "total", "Anomalies stored for the first time (replays excluded), by kind, severity and whether a cooldown suppressed them.") }
        static var anomaliesInStore: MetricNameDescriptor { name("anomalies_in_store", "", "Anomalies in the coordinator's database (after retention).") }
        static var detectionLatency: MetricNameDescriptor { name("detection_latency", "seconds", "Coordinator time of an anomaly's first insert minus the event time of the trade that closed its window; meaningful for live feeds (a replay of old trades lands in the last bucket).") }
        static var windowsStored: MetricNameDescriptor { name("windows_stored", "total", "Closed-window summaries received from workers.") }
        static var lateEventsStored: MetricNameDescriptor { name("late_events_stored", "total", "Late trades (older than their partition's watermark) received from workers.") }
        static var reportsRejected: MetricNameDescriptor { name("reports_rejected", "total", "Reports refused by fencing (stale epoch or not the owner).") }
        static var checkpointsRejected: MetricNameDescriptor { name("checkpoints_rejected", "total", "Checkpoints refused by fencing (stale epoch or not the owner).") }
        static var checkpointSize: MetricNameDescriptor { name("checkpoint_size", "bytes", "Size of stored checkpoint states.") }
        static var checkpointDuration: MetricNameDescriptor { name("checkpoint_duration", "seconds", "Time workers took to snapshot and encode a stored checkpoint.") }
        static var requestDuration: MetricNameDescriptor { name("http_request_duration", "seconds", "Time the coordinator took to answer a request, by route (worker RPCs and operator API).") }
        static var recordsConsumed: MetricNameDescriptor { name("partition_records_consumed", "total", "Records taken from Kafka, by partition (from worker heartbeats).") }
        static var recordsWindowed: MetricNameDescriptor { name("partition_records_processed", "total", "On-time trades applied to windows, by partition (from worker heartbeats).") }
        static var recordsLate: MetricNameDescriptor { name("partition_records_late", "total", "Late trades counted and set aside, by partition (from worker heartbeats).") }
        static var recordsMalformed: MetricNameDescriptor { name("partition_records_malformed", "total", "Records that are not trades, by partition (from worker heartbeats).") }
        static var windowsClosed: MetricNameDescriptor { name("partition_windows_closed", "total", "Windows closed and evaluated, by partition (from worker heartbeats).") }
        static var lag: MetricNameDescriptor { name("partition_lag", "records", "Records between a partition's next offset and its log end, as its owner last saw them.") }
        static var lagSeconds: MetricNameDescriptor { name("partition_lag", "seconds", "Seconds of input a partition is behind (lag divided by the arrival rate).") }
        static var logEnd: MetricNameDescriptor { name("partition_log_end_offset", "", "Log end offset of a partition, as its owner last saw it.") }
        static var nextOffset: MetricNameDescriptor { name("partition_next_offset", "", "Next offset a partition's owner will process.") }
        static var watermarkDelay: MetricNameDescriptor { name("partition_watermark_delay", "seconds", "Coordinator time minus a partition's event-time watermark (includes the allowed lateness).") }
        static var epoch: MetricNameDescriptor { name("partition_epoch", "", "Assignment epoch of a partition.") }
        static var workers: MetricNameDescriptor { name("workers", "", "Workers known to the coordinator, by lease state.") }
        static var unowned: MetricNameDescriptor { name("partitions_unowned", "", "Partitions without a live owner.") }
        static var problems: MetricNameDescriptor { name("problems", "", "Problems listed by /v1/status (0 when healthy).") }
        static var startTime: MetricNameDescriptor { name("coordinator_start_time", "seconds", "Unix time the coordinator started.") }
        static var alertsDelivered: MetricNameDescriptor { name("alerts_delivered", "total", "Alerts the webhook accepted.") }
        static var alertFailures: MetricNameDescriptor { name("alert_delivery_failures", "total", "Failed alert deliveries; permanent ones are not retried.") }
        static var alertsPending: MetricNameDescriptor { name("alerts_pending", "", "Alerts waiting in the outbox for delivery.") }
        static var retentionDeleted: MetricNameDescriptor { name("retention_deleted_rows", "total", "Rows deleted by retention, by table.") }
    }
}

/// Turns cumulative per-partition counts into increments (see `CoordinatorMetrics`).
final class PartitionCounterDeltas: Sendable {
    struct Counts: Sendable {
        var consumed: Int64 = 0
        var windowed: Int64 = 0
        var late: Int64 = 0
        var malformed: Int64 = 0
        var windowsClosed: Int64 = 0
    }

    private let last = Mutex<[Int32: Counts]>([:])

    /// What grew since the partition's previous counts; a count that went down grows by nothing
    /// and becomes the new base.
    func advance(_ progress: PartitionProgress) -> Counts {
        let now = Counts(
            consumed: progress.consumed, windowed: progress.windowed, late: progress.late, malformed: progress.malformed,
            windowsClosed: progress.windowsClosed)
        let before = last.withLock { last in
            defer { last[progress.partition] = now }
            return last[progress.partition]
        }
        guard let before else { return now }
        return Counts(
            consumed: max(0, now.consumed - before.consumed), windowed: max(0, now.windowed - before.windowed),
            late: max(0, now.late - before.late), malformed: max(0, now.malformed - before.malformed),
            windowsClosed: max(0, now.windowsClosed - before.windowsClosed))
    }
}
