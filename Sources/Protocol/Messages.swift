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
    public static let status = "/v1/status"
    public static let anomalies = "/v1/anomalies"
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

    public init(workerID: String, address: String, pid: Int32, protocolVersion: Int = ProtocolVersion.current) {
        self.protocolVersion = protocolVersion
        self.workerID = workerID
        self.address = address
        self.pid = pid
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

    public init(partition: Int32, epoch: Int64, nextOffset: Int64, logEndOffset: Int64 = -1, consumed: Int64 = 0, windowed: Int64 = 0, late: Int64 = 0, malformed: Int64 = 0, windowsClosed: Int64 = 0, anomalies: Int64 = 0, watermarkMs: Int64 = .min, recordsPerSecond: Double = 0, lost: [OffsetRange] = []) {
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

// MARK: - Operator API

public struct WorkerStatus: Codable, Sendable {
    public var id: String
    public var address: String
    public var pid: Int32
    /// "up", "suspect" (missed heartbeats) or "down".
    public var state: String
    public var registeredAtMs: Int64
    public var lastHeartbeatMs: Int64
    public var partitions: [Int32]
    public var recordsPerSecond: Double
    public var rssBytes: Int64
    public var cpuSeconds: Double

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
