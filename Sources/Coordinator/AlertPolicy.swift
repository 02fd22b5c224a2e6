import Detection

/// Which anomalies are alerted, and where (cluster.conf `[alerts]`).
///
/// An anomaly is alerted when it is first stored (never on a replay), is not suppressed by a
/// cooldown, and has `severity >= minSeverity`. It is queued in the alert outbox in the same
/// transaction that stores it, so a crash cannot store it without queueing its alert; the
/// `AlertDispatcher` delivers it from there.
public struct AlertPolicy: Sendable, Equatable {
    /// Slack incoming-webhook compatible URL (`http://` or `https://`) the alerts are POSTed to.
    public var webhookURL: String
    public var minSeverity: Severity
    /// Base URL of the dashboard, linked from each alert (`<dashboardURL>#symbol=SYMBOL`); nil for
    /// no link.
    public var dashboardURL: String?

    public init(webhookURL: String, minSeverity: Severity = .high, dashboardURL: String? = nil) {
        self.webhookURL = webhookURL
        self.minSeverity = minSeverity
        self.dashboardURL = dashboardURL
    }

    /// Whether a newly stored anomaly is alerted.
    public func admits(_ anomaly: Anomaly) -> Bool {
        !anomaly.suppressed && anomaly.severity >= minSeverity
    }
}
