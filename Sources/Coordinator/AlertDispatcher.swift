import Detection
import Logging
import ServiceLifecycle

/// Delivers the alert outbox to the webhook: in queue order, each alert until the webhook accepts
/// it, surviving coordinator restarts (the outbox is in SQLite).
///
/// - A failed attempt (network, timeout, 5xx, 408, 429) is retried after a backoff that doubles
///   from `initialBackoffMs` up to `maxBackoffMs`; the pass stops there, so a webhook that is down
///   gets one attempt per backoff, not one per queued alert, and alerts keep their order.
/// - A refusal (another 4xx) marks the alert failed, logs why, and is never retried.
/// - Delivery is at least once: if the coordinator dies between the webhook's answer and the
///   outbox update, that one alert is sent again after the restart. Otherwise each alert is
///   delivered exactly once.
/// - Delivered and failed rows are deleted after `keepMs` (the anomaly retention).
///
/// `deliverDue(now:)` is one pass (tests call it with their clock); `run()` calls it every
/// `pollIntervalMs` until cancelled or gracefully shut down.
public actor AlertDispatcher: Service {
    public nonisolated let policy: AlertPolicy
    private let store: CoordinatorStore
    private let webhook: any AlertWebhook
    private let clusterName: String
    private let metrics: CoordinatorMetrics?
    private let logger: Logger
    private let clock: @Sendable () -> Int64
    public private(set) var initialBackoffMs: Int64 = 1_000
    public private(set) var maxBackoffMs: Int64 = 300_000
    public private(set) var pollIntervalMs: Int64 = 500
    public private(set) var keepMs: Int64
    private var lastPruneMs: Int64?

    /// What one pass did.
    public struct Pass: Sendable, Equatable {
        public var delivered = 0
        public var refused = 0
        /// Attempts that failed and were rescheduled.
        public var retried = 0

        public init(delivered: Int = 0, refused: Int = 0, retried: Int = 0) {
            self.delivered = delivered
            self.refused = refused
            self.retried = retried
        }
    }

    public init(
        policy: AlertPolicy, store: CoordinatorStore, clusterName: String, webhook: any AlertWebhook = URLSessionWebhook(),
        metrics: CoordinatorMetrics? = nil, keepMs: Int64 = RetentionPolicy().anomaliesMs, logger: Logger,
        clock: @escaping @Sendable () -> Int64 = CoordinatorNode.wallClock
    ) {
        self.policy = policy
        self.store = store
        self.clusterName = clusterName
        self.webhook = webhook
        self.metrics = metrics
        self.keepMs = keepMs
        self.logger = logger
        self.clock = clock
    }

    /// Sets the backoff bounds (ms).
    public func setBackoff(initialMs: Int64, maxMs: Int64) {
        initialBackoffMs = initialMs
        maxBackoffMs = maxMs
    }

    /// The delay before the attempt after `attempts` failed ones.
    public nonisolated static func backoff(afterAttempts attempts: Int, initialMs: Int64, maxMs: Int64) -> Int64 {
        let doublings = min(max(attempts - 1, 0), 30)
        return min(maxMs, initialMs << doublings)
    }

    /// Delivers the alerts due at `now`, in order, until one fails (see the type's notes).
    @discardableResult
    public func deliverDue(now: Int64) async throws -> Pass {
        var pass = Pass()
        for alert in try await store.pendingAlerts() {
            if Task.isCancelled || alert.nextAttemptAtMs > now { break }
            let body = try AlertMessage(alert.anomaly, cluster: clusterName, dashboardURL: policy.dashboardURL).body()
            let metadata: Logger.Metadata = [
                "anomaly.id": "\(alert.anomaly.id)", "symbol": "\(alert.anomaly.symbol)", "kind": "\(alert.anomaly.kind.rawValue)",
                "severity": "\(alert.anomaly.severity.rawValue)", "attempt": "\(alert.attempts + 1)",
            ]
            switch await webhook.post(body, to: policy.webhookURL) {
            case .delivered:
                try await store.markAlertDelivered(seq: alert.seq, now: clock())
                metrics?.alertDelivered()
                logger.info("alert delivered", metadata: metadata)
                pass.delivered += 1
            case .refused(let reason):
                try await store.markAlertFailed(seq: alert.seq, error: reason)
                metrics?.alertFailed(permanent: true)
                logger.error("alert refused by the webhook; not retrying: check alerts.webhook_url", metadata: metadata.merging(["reason": "\(reason)"]) { $1 })
                pass.refused += 1
            case .retry(let reason):
                let delay = Self.backoff(afterAttempts: alert.attempts + 1, initialMs: initialBackoffMs, maxMs: maxBackoffMs)
                try await store.markAlertRetry(seq: alert.seq, nextAttemptAtMs: now + delay, error: reason)
                metrics?.alertFailed(permanent: false)
                logger.warning("alert delivery failed; retrying", metadata: metadata.merging(["reason": "\(reason)", "retry.in.ms": "\(delay)"]) { $1 })
                pass.retried += 1
                return pass
            }
        }
        return pass
    }

    public func run() async throws {
        logger.info("alert dispatcher running", metadata: ["webhook": "\(Self.redacted(policy.webhookURL))", "min_severity": "\(policy.minSeverity.rawValue)"])
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.tick()
                try? await Task.sleep(for: .milliseconds(self.pollIntervalMs))
            }
        }
    }

    private func tick() async {
        let now = clock()
        do {
            try await deliverDue(now: now)
            metrics?.alertsPending(try await store.pendingAlertCount())
            if lastPruneMs.map({ now - $0 >= 3_600_000 }) ?? true {
                lastPruneMs = now
                let pruned = try await store.pruneAlerts(queuedBefore: now - keepMs)
                if pruned > 0 { logger.info("old alerts pruned from the outbox", metadata: ["rows": "\(pruned)"]) }
            }
        } catch {
            logger.error("alert outbox failed; retrying shortly", metadata: ["error": "\(error)", "database": "\(store.path)"])
        }
    }

    /// The webhook URL without its path (Slack's path is the secret).
    nonisolated static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return "(invalid URL)" }
        let rest = url[schemeEnd.upperBound...]
        let host = rest.prefix { $0 != "/" }
        return "\(url[..<schemeEnd.upperBound])\(host)/…"
    }
}
