import Detection
import Foundation

/// Wire messages between workers, the coordinator and the CLI.
///
/// Every message is JSON over HTTP/2 (`POST /rpc/<name>` for the cluster RPCs,
/// `GET /v1/...` for the operator API). Adding an optional field is compatible; anything else
/// bumps `ProtocolVersion.current`, which a worker sends when it registers and the coordinator
/// checks.
public enum ProtocolVersion {
    public static let current = 1
}

/// RPC paths, in one place so that client and server cannot drift.
public enum RPCPath {
    public static let register = "/rpc/register"
    public static let heartbeat = "/rpc/heartbeat"
    public static let report = "/rpc/report"
    public static let checkpoint = "/rpc/checkpoint"
    public static let release = "/rpc/release"
    public static let fetchCheckpoint = "/rpc/checkpoint/fetch"
    /// A worker leaving gracefully (SIGTERM): see `DeregisterRequest`.
    public static let deregister = "/rpc/deregister"
    public static let status = "/v1/status"
    public static let anomalies = "/v1/anomalies"
    /// `GET`: symbols with stored windows (`[SymbolSummary]`); `GET /v1/symbols/{symbol}/windows`
    /// gives one symbol's recent windows (`[WindowPoint]`).
    public static let symbols = "/v1/symbols"
    /// Prometheus text format, on the coordinator and on every worker's metrics port.
    public static let metrics = "/metrics"
}

/// Kafka connection settings, as the coordinator hands them to workers.
public struct KafkaSettings: Codable, Sendable, Equatable {
    /// `bootstrap.servers`.
    public var brokers: String
    public var topic: String
    /// Partitions the topic is expected to have (created with this many when missing).
    public var partitions: Int32
    /// Where a partition without a checkpoint starts: "earliest" or "latest".
    public var startOffset: String
    /// Passed straight to librdkafka (`[kafka.properties]`), e.g. SASL settings.
    public var properties: [String: String]

    public init(brokers: String, topic: String = "trades", partitions: Int32 = 12, startOffset: String = "earliest", properties: [String: String] = [:]) {
        self.brokers = brokers
        self.topic = topic
        self.partitions = partitions
        self.startOffset = startOffset
        self.properties = properties
    }
}

/// Everything a worker needs to run, received when it registers (as a Spark executor gets its
/// configuration from the driver), so that `--coordinator HOST:PORT` is all a new host needs.
public struct WorkerSettings: Codable, Sendable, Equatable {
    public var clusterName: String
    public var kafka: KafkaSettings
    public var detection: DetectionConfig
    public var heartbeatIntervalMs: Int64
    public var leaseTimeoutMs: Int64
    public var checkpointIntervalMs: Int64

    public init(clusterName: String, kafka: KafkaSettings, detection: DetectionConfig, heartbeatIntervalMs: Int64 = 1_000, leaseTimeoutMs: Int64 = 6_000, checkpointIntervalMs: Int64 = 10_000) {
        self.clusterName = clusterName
        self.kafka = kafka
        self.detection = detection
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.leaseTimeoutMs = leaseTimeoutMs
        self.checkpointIntervalMs = checkpointIntervalMs
    }
}

public struct RegisterRequest: Codable, Sendable {
    public var protocolVersion: Int
    /// Chosen by the worker (unique per process); re-sent unchanged when it re-registers.
    public var workerID: String
    /// Host name or address the worker is reachable at (for the operator's view).
    public var address: String
    public var pid: Int32
    /// HOST:PORT of the worker's Prometheus `/metrics` endpoint, shown in `/v1/status`; nil when
    /// the worker serves none (or is older than the field).
    public var metricsAddress: String?

    public init(workerID: String, address: String, pid: Int32, protocolVersion: Int = ProtocolVersion.current, metricsAddress: String? = nil) {
        self.protocolVersion = protocolVersion
        self.workerID = workerID
        self.address = address
        self.pid = pid
        self.metricsAddress = metricsAddress
    }
}

public struct RegisterResponse: Codable, Sendable {
    public var workerID: String
    public var settings: WorkerSettings

    public init(workerID: String, settings: WorkerSettings) {
        self.workerID = workerID
        self.settings = settings
    }
}

/// A range of offsets `[from, to)` that a task needed but the broker no longer had
/// (retention moved the log start past them). Reported, never skipped silently.
public struct OffsetRange: Codable, Sendable, Equatable {
    public var from: Int64
    public var to: Int64
    public init(from: Int64, to: Int64) {
        self.from = from
        self.to = to
    }
}

/// One partition's progress, as its owner reports it with each heartbeat.
public struct PartitionProgress: Codable, Sendable, Equatable {
    public var partition: Int32
    public var epoch: Int64
    /// Next offset the task will process (everything before it is applied).
    public var nextOffset: Int64
    /// Log end offset (high watermark) as last seen by the consumer; -1 when unknown.
    public var logEndOffset: Int64
    public var consumed: Int64
    public var windowed: Int64
    public var late: Int64
    public var malformed: Int64
    public var windowsClosed: Int64
    public var anomalies: Int64
    /// Event-time watermark in ms; `Int64.min` before the first trade.
    public var watermarkMs: Int64
    /// Records consumed per second over the last few seconds (processing rate).
    public var recordsPerSecond: Double
    /// Offset ranges lost to retention since the task started.
    public var lost: [OffsetRange]
    /// Symbols with window state in the partition; nil from a worker that does not send it.
    public var symbols: Int64?


    public init(partition: Int32, epoch: Int64, nextOffset: Int64, logEndOffset: Int64 = -1, consumed: Int64 = 0, windowed: Int64 = 0, late: Int64 = 0, malformed: Int64 = 0, windowsClosed: Int64 = 0, anomalies: Int64 = 0, watermarkMs: Int64 = .min, recordsPerSecond: Double = 0, lost: [OffsetRange] = [], symbols: Int64? = nil) {
        self.partition = partition
        self.epoch = epoch
        self.nextOffset = nextOffset
        self.logEndOffset = logEndOffset
        self.consumed = consumed
        self.windowed = windowed
        self.late = late
        self.malformed = malformed
        self.windowsClosed = windowsClosed
        self.anomalies = anomalies
        self.watermarkMs = watermarkMs
        self.recordsPerSecond = recordsPerSecond
        self.lost = lost
        self.symbols = symbols
    }
}

public struct HeartbeatRequest: Codable, Sendable {
    public var workerID: String
    public var partitions: [PartitionProgress]
    public var rssBytes: Int64
    public var cpuSeconds: Double

    public init(workerID: String, partitions: [PartitionProgress], rssBytes: Int64 = 0, cpuSeconds: Double = 0) {
        self.workerID = workerID
        self.partitions = partitions
        self.rssBytes = rssBytes
        self.cpuSeconds = cpuSeconds
    }
}

/// A partition a worker owns, under an epoch. Any write the worker makes for the partition
/// carries the epoch; the coordinator rejects writes whose epoch is not the current one.
public struct Assignment: Codable, Sendable, Equatable, Hashable {
    public var partition: Int32
    public var epoch: Int64
    public init(partition: Int32, epoch: Int64) {
        self.partition = partition
        self.epoch = epoch
    }
}

public struct HeartbeatResponse: Codable, Sendable {
    public enum Status: String, Codable, Sendable {
        case ok
        /// The coordinator does not know this worker (restarted, or declared it down): register again.
        case unknownWorker = "unknown_worker"
    }
    public var status: Status
    /// The complete set of partitions the worker should own now. Tasks not listed must stop.
    public var assignments: [Assignment]

    public init(status: Status, assignments: [Assignment]) {
        self.status = status
        self.assignments = assignments
    }
}

/// Results of one or more processed batches of one partition.
public struct ReportRequest: Codable, Sendable {
    public var workerID: String
    public var partition: Int32
    public var epoch: Int64
    public var anomalies: [Anomaly]
    public var windows: [WindowSummary]
    public var lateEvents: [LateEvent]
    public var malformed: [MalformedRecord]
    public var lost: [OffsetRange]

    public init(workerID: String, partition: Int32, epoch: Int64, anomalies: [Anomaly] = [], windows: [WindowSummary] = [], lateEvents: [LateEvent] = [], malformed: [MalformedRecord] = [], lost: [OffsetRange] = []) {
        self.workerID = workerID
        self.partition = partition
        self.epoch = epoch
        self.anomalies = anomalies
        self.windows = windows
        self.lateEvents = lateEvents
        self.malformed = malformed
        self.lost = lost
    }
}

public struct ReportResponse: Codable, Sendable {
    /// False when the epoch is stale: the worker no longer owns the partition and must stop it.
    public var accepted: Bool
    /// How many of the anomalies were new (the rest were replays of stored ids).
    public var inserted: Int
    public var reason: String?

    public init(accepted: Bool, inserted: Int, reason: String? = nil) {
        self.accepted = accepted
        self.inserted = inserted
        self.reason = reason
    }
}

/// A partition's state at a batch boundary: everything before `nextOffset` is applied to `state`
/// (an opaque `PartitionProcessor` snapshot). Stored with the epoch it was taken under, in one
/// transaction; a checkpoint from a stale epoch is rejected.
public struct CheckpointRequest: Codable, Sendable {
    public var workerID: String
    public var partition: Int32
    public var epoch: Int64
    public var nextOffset: Int64
    public var state: Data
    /// Event-time watermark at the checkpoint.
    public var watermarkMs: Int64
    /// How long the snapshot took to take and encode, for the operator.
    public var durationMs: Double

    public init(workerID: String, partition: Int32, epoch: Int64, nextOffset: Int64, state: Data, watermarkMs: Int64, durationMs: Double) {
        self.workerID = workerID
        self.partition = partition
        self.epoch = epoch
        self.nextOffset = nextOffset
        self.state = state
        self.watermarkMs = watermarkMs
        self.durationMs = durationMs
    }
}

public struct CheckpointResponse: Codable, Sendable {
    public var accepted: Bool
    /// Sequence number of the stored checkpoint (per partition, increasing).
    public var checkpointID: Int64
    public var reason: String?

    public init(accepted: Bool, checkpointID: Int64, reason: String? = nil) {
        self.accepted = accepted
        self.checkpointID = checkpointID
        self.reason = reason
    }
}

/// Asked by a task that was just given a partition: where to start.
public struct FetchCheckpointRequest: Codable, Sendable {
    public var workerID: String
    public var partition: Int32
    public var epoch: Int64

    public init(workerID: String, partition: Int32, epoch: Int64) {
        self.workerID = workerID
        self.partition = partition
        self.epoch = epoch
    }
}

public struct FetchCheckpointResponse: Codable, Sendable {
    /// False when the epoch is not current (the partition moved again): do not start.
    public var accepted: Bool
    /// Nil when the partition has never been checkpointed: start at the configured start offset.
    public var checkpointID: Int64?
    public var nextOffset: Int64?
    public var state: Data?

    public init(accepted: Bool, checkpointID: Int64? = nil, nextOffset: Int64? = nil, state: Data? = nil) {
        self.accepted = accepted
        self.checkpointID = checkpointID
        self.nextOffset = nextOffset
        self.state = state
    }
}

/// Sent by an owner after it stopped a task it was told to give up (handoff): its final checkpoint
/// is stored, so the coordinator may now hand the partition to its next owner.
public struct ReleaseRequest: Codable, Sendable {
    public var workerID: String
    public var partition: Int32
    public var epoch: Int64

    public init(workerID: String, partition: Int32, epoch: Int64) {
        self.workerID = workerID
        self.partition = partition
        self.epoch = epoch
    }
}

public struct ReleaseResponse: Codable, Sendable {
    public var accepted: Bool
    public init(accepted: Bool) { self.accepted = accepted }
}

/// Sent by a worker that leaves gracefully (SIGTERM), first when it starts to leave and again once
/// it has handed everything off.
///
/// The first call marks the worker `leaving`: it gets no new partitions, and each one it owns is
/// handed off (its heartbeat answers stop listing them, so it takes a final checkpoint and
/// releases each; the next owner restores that checkpoint with `epoch + 1`). Heartbeats keep its
/// lease meanwhile. When it owns nothing any more the coordinator forgets it ("left"); a later
/// call is then answered `accepted: false`. With no other live worker, its partitions become
/// unowned after their final checkpoints, and the next worker to join resumes from those.
public struct DeregisterRequest: Codable, Sendable {
    public var workerID: String

    public init(workerID: String) {
        self.workerID = workerID
    }
}

public struct DeregisterResponse: Codable, Sendable {
    /// False when the coordinator does not know the worker (never registered, declared down, or
    /// already left): its partitions have moved already; it must stop them without writing.
    public var accepted: Bool
    /// Partitions the worker still owns (being handed off); empty once it has left.
    public var partitions: [Int32]
    public var reason: String?

    public init(accepted: Bool, partitions: [Int32], reason: String? = nil) {
        self.accepted = accepted
        self.partitions = partitions
        self.reason = reason
    }
}

// MARK: - Operator API

public struct WorkerStatus: Codable, Sendable {
    public var id: String
    public var address: String
    public var pid: Int32
    /// "up", "suspect" (missed heartbeats), "leaving" (handing its partitions off before it
    /// exits), "restored" (known from before a coordinator restart) or "down".
    public var state: String
    public var registeredAtMs: Int64
    public var lastHeartbeatMs: Int64
    public var partitions: [Int32]
    public var recordsPerSecond: Double
    public var rssBytes: Int64
    public var cpuSeconds: Double

    // Operator view (all optional: nil when unknown, or from a coordinator that does not fill them).
    /// HOST:PORT of the worker's Prometheus endpoint (`http://HOST:PORT/metrics`).
    public var metricsAddress: String? = nil
    /// Times this worker id registered again with a different process id (a process restart)
    /// since this coordinator started.
    public var restarts: Int? = nil
    /// Symbols with window state, summed over its partitions.
    public var symbols: Int64? = nil
    /// Records arriving in its partitions per second (growth of their log end offsets).
    public var inPerSecond: Double? = nil
    /// Records it processes per second (growth of its partitions' next offsets).
    public var processedPerSecond: Double? = nil
    /// Records behind the log end, summed over its partitions whose offsets are known.
    public var lag: Int64? = nil
    /// Seconds of input it is behind: the largest `lagSeconds` of its partitions.
    public var lagSeconds: Double? = nil
    /// Coordinator time minus the oldest watermark (event time) of its partitions, in ms.
    public var watermarkAgeMs: Int64? = nil
    /// Age of the oldest "latest checkpoint" among its partitions (the most overdue one), in ms;
    /// nil when one of them has none.
    public var checkpointAgeMs: Int64? = nil
    /// CPU use between its last heartbeats, in percent of one core.
    public var cpuPercent: Double? = nil

    public init(id: String, address: String, pid: Int32, state: String, registeredAtMs: Int64, lastHeartbeatMs: Int64, partitions: [Int32], recordsPerSecond: Double, rssBytes: Int64, cpuSeconds: Double) {
        self.id = id
        self.address = address
        self.pid = pid
        self.state = state
        self.registeredAtMs = registeredAtMs
        self.lastHeartbeatMs = lastHeartbeatMs
        self.partitions = partitions
        self.recordsPerSecond = recordsPerSecond
        self.rssBytes = rssBytes
        self.cpuSeconds = cpuSeconds
    }
}

public struct PartitionStatus: Codable, Sendable {
    public var partition: Int32
    public var owner: String?
    public var epoch: Int64
    public var nextOffset: Int64
    public var logEndOffset: Int64
    /// `logEndOffset - nextOffset` when both are known, else -1.
    public var lag: Int64
    public var consumed: Int64
    public var windowed: Int64
    public var late: Int64
    public var malformed: Int64
    public var watermarkMs: Int64
    public var lost: [OffsetRange]

    // Operator view (all optional: nil when unknown, or from a coordinator that does not fill them).
    /// Next offset of the latest stored checkpoint: where a new owner would resume.
    public var committedOffset: Int64? = nil
    /// Records arriving per second (growth of the log end offset over the last seconds).
    public var inPerSecond: Double? = nil
    /// Records processed per second (growth of the next offset over the last seconds).
    public var processedPerSecond: Double? = nil
    /// Seconds of input behind: `lag / inPerSecond`; 0 when caught up, nil when no input is arriving.
    public var lagSeconds: Double? = nil
    /// Late events stored in the last 5 minutes (coordinator time).
    public var lateRecent: Int64? = nil
    /// Symbols with window state in the partition.
    public var symbols: Int64? = nil
    /// Coordinator time the watermark last moved forward (as seen in heartbeats).
    public var watermarkAdvancedMs: Int64? = nil

    // Ownership and checkpoint facts (optional: nil when unknown, e.g. never checkpointed).
    /// Coordinator time (ms) the owner was given the partition under the current `epoch`: when a
    /// failover or handoff completed.
    public var assignedAtMs: Int64? = nil
    /// Id of the latest stored checkpoint (per partition, increasing by one per checkpoint).
    public var checkpointID: Int64? = nil
    /// Epoch the latest checkpoint was taken under (the current one, or an earlier owner's).
    public var checkpointEpoch: Int64? = nil
    /// How long ago (coordinator time) the latest checkpoint was stored.
    public var checkpointAgeMs: Int64? = nil
    /// How long the owner took to snapshot and encode that checkpoint, in ms.
    public var checkpointDurationMs: Double? = nil
    /// Size of that checkpoint's state in bytes.
    public var checkpointBytes: Int64? = nil

    public init(partition: Int32, owner: String?, epoch: Int64, nextOffset: Int64, logEndOffset: Int64, lag: Int64, consumed: Int64, windowed: Int64, late: Int64, malformed: Int64, watermarkMs: Int64, lost: [OffsetRange]) {
        self.partition = partition
        self.owner = owner
        self.epoch = epoch
        self.nextOffset = nextOffset
        self.logEndOffset = logEndOffset
        self.lag = lag
        self.consumed = consumed
        self.windowed = windowed
        self.late = late
        self.malformed = malformed
        self.watermarkMs = watermarkMs
        self.lost = lost
    }
}

public struct ClusterStatus: Codable, Sendable {
    public var clusterName: String
    public var coordinator: String
    public var startedAtMs: Int64
    public var nowMs: Int64
    public var workers: [WorkerStatus]
    public var partitions: [PartitionStatus]
    public var anomalyCount: Int64
    /// Human-readable problems (unowned partitions, lost offsets, ...). Empty when healthy.
    public var problems: [String]
    /// Anomalies stored recently (see `AnomalyDigest`); nil from a coordinator that does not fill it.
    public var recentAnomalies: AnomalyDigest? = nil

    public init(clusterName: String, coordinator: String, startedAtMs: Int64, nowMs: Int64, workers: [WorkerStatus], partitions: [PartitionStatus], anomalyCount: Int64, problems: [String]) {
        self.clusterName = clusterName
        self.coordinator = coordinator
        self.startedAtMs = startedAtMs
        self.nowMs = nowMs
        self.workers = workers
        self.partitions = partitions
        self.anomalyCount = anomalyCount
        self.problems = problems
    }
}

/// Anomalies the coordinator stored in the last `windowMs` (coordinator time, so a replay of old
/// trades counts when it is stored), for the status page.
public struct AnomalyDigest: Codable, Sendable, Equatable {
    /// How far back the digest looks, in ms.
    public var windowMs: Int64
    /// Alertable (not suppressed) anomalies by severity raw value; severities with none are absent.
    public var bySeverity: [String: Int64]
    /// Repeats inside a cooldown: stored, never alerted, not in `bySeverity`.
    public var suppressed: Int64
    /// Symbols with the most alertable anomalies, most first (ties by symbol).
    public var topSymbols: [SymbolCount]

    public struct SymbolCount: Codable, Sendable, Equatable {
        public var symbol: String
        public var count: Int64
        public init(symbol: String, count: Int64) {
            self.symbol = symbol
            self.count = count
        }
    }

    public init(windowMs: Int64, bySeverity: [String: Int64], suppressed: Int64, topSymbols: [SymbolCount]) {
        self.windowMs = windowMs
        self.bySeverity = bySeverity
        self.suppressed = suppressed
        self.topSymbols = topSymbols
    }
}

/// An anomaly as the coordinator stores and serves it (`GET /v1/anomalies`): the detected
/// `Anomaly` plus what happened to it afterwards.
public struct StoredAnomaly: Codable, Sendable, Equatable {
    public var anomaly: Anomaly
    /// Wall-clock time the coordinator first stored it.
    public var storedAtMs: Int64
    public var acknowledged: Bool
    public var acknowledgedAtMs: Int64?
    public var acknowledgedBy: String?

    public init(anomaly: Anomaly, storedAtMs: Int64, acknowledged: Bool = false, acknowledgedAtMs: Int64? = nil, acknowledgedBy: String? = nil) {
        self.anomaly = anomaly
        self.storedAtMs = storedAtMs
        self.acknowledged = acknowledged
        self.acknowledgedAtMs = acknowledgedAtMs
        self.acknowledgedBy = acknowledgedBy
    }
}

/// Response of `POST /v1/anomalies/{id}/ack`.
public struct AckResponse: Codable, Sendable {
    public var id: String
    public var acknowledged: Bool
    public var acknowledgedAtMs: Int64?
    public var acknowledgedBy: String?

    public init(id: String, acknowledged: Bool, acknowledgedAtMs: Int64?, acknowledgedBy: String?) {
        self.id = id
        self.acknowledged = acknowledged
        self.acknowledgedAtMs = acknowledgedAtMs
        self.acknowledgedBy = acknowledgedBy
    }
}

/// A symbol the coordinator has window summaries for (`GET /v1/symbols`).
public struct SymbolSummary: Codable, Sendable, Equatable {
    public var symbol: String
    /// Stored window summaries (what retention has kept).
    public var windows: Int64
    /// End of the newest stored window (event time, ms).
    public var lastWindowEndMs: Int64
    /// Close of the newest stored window; nil when that window had no trade and no earlier price.
    public var lastClose: Double?
    /// Stored anomalies of the symbol, suppressed ones included.
    public var anomalies: Int64

    public init(symbol: String, windows: Int64, lastWindowEndMs: Int64, lastClose: Double?, anomalies: Int64) {
        self.symbol = symbol
        self.windows = windows
        self.lastWindowEndMs = lastWindowEndMs
        self.lastClose = lastClose
        self.anomalies = anomalies
    }
}

/// One closed window of one symbol, for charts (`GET /v1/symbols/{symbol}/windows`). Prices and
/// volumes a window does not have (no trade in it and no earlier price) are nil, never NaN, so
/// the JSON stays valid.
public struct WindowPoint: Codable, Sendable, Equatable {
    public var startMs: Int64
    public var endMs: Int64
    public var count: Int64
    public var open: Double?
    public var high: Double?
    public var low: Double?
    public var close: Double?
    public var vwap: Double?
    public var quoteVolume: Double?
    public var logReturn: Double?
    public var volatility: Double?

    public init(_ w: WindowSummary) {
        func finite(_ value: Double) -> Double? { value.isFinite ? value : nil }
        startMs = w.startMs
        endMs = w.endMs
        count = w.count
        open = finite(w.open)
        high = finite(w.high)
        low = finite(w.low)
        close = finite(w.close)
        vwap = finite(w.vwap)
        quoteVolume = finite(w.quoteVolume)
        logReturn = finite(w.logReturn)
        volatility = finite(w.volatility)
    }
}
