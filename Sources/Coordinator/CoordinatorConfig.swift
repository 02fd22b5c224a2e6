import Protocol

/// How a coordinator runs. Loaded by `vigil coordinator` from cluster.conf.
public struct CoordinatorConfig: Sendable {
    /// SQLite file of the `CoordinatorStore`; its directory must exist.
    public var databasePath: String
    /// Where the coordinator listens, as shown in `/v1/status` (e.g. "0.0.0.0:7070").
    public var listenAddress: String
    /// Handed to every worker when it registers. `settings.kafka.partitions` is the number of
    /// partitions the coordinator assigns; heartbeat interval and lease timeout drive `Membership`.
    public var settings: WorkerSettings
    /// How long an owner may take to checkpoint and release a partition it was asked to give up,
    /// before the partition moves anyway (fencing the owner with `epoch + 1`).
    public var handoffTimeoutMs: Int64
    /// Period of `tick()` in `run()`: the resolution of lease expiry and handoff timeouts.
    public var tickIntervalMs: Int64
    public var retention: RetentionPolicy
    /// How often `tick()` applies `retention`.
    public var retentionIntervalMs: Int64
    /// Down workers stay visible in `/v1/status` for this long.
    public var forgetDownWorkersAfterMs: Int64
    /// Where and which anomalies are alerted; nil for no alerts (nothing is queued).
    public var alerts: AlertPolicy?

    public init(
        databasePath: String, listenAddress: String, settings: WorkerSettings, handoffTimeoutMs: Int64 = 15_000,
        tickIntervalMs: Int64 = 250, retention: RetentionPolicy = RetentionPolicy(), retentionIntervalMs: Int64 = 600_000,
        forgetDownWorkersAfterMs: Int64 = 600_000, alerts: AlertPolicy? = nil
    ) {
        self.databasePath = databasePath
        self.listenAddress = listenAddress
        self.settings = settings
        self.handoffTimeoutMs = handoffTimeoutMs
        self.tickIntervalMs = tickIntervalMs
        self.retention = retention
        self.retentionIntervalMs = retentionIntervalMs
        self.forgetDownWorkersAfterMs = forgetDownWorkersAfterMs
        self.alerts = alerts
    }

    /// The cluster's name, as workers receive it in `settings`.
    public var clusterName: String { settings.clusterName }
}
