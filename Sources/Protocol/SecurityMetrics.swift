import Logging
import Prometheus

/// Why a server refused a request or a connection, as the `reason` label of
/// `vigil_http_rejected_total`.
public enum RejectionReason: String, Sendable, CaseIterable {
    /// A request body over `HTTPLimits.maxBodyBytes` (413).
    case bodyTooLarge = "body_too_large"
    /// A request's headers over `HTTPLimits.maxHeaderBytes` (431).
    case headersTooLarge = "headers_too_large"
    /// A connection closed because the peer broke HTTP/2 (bad preface, invalid frames).
    case protocolError = "protocol_error"
    /// A cleartext connection to a TLS port.
    case plaintextOnTLS = "plaintext_on_tls"
    /// A TLS handshake that failed or did not finish within `HTTPLimits.tlsHandshakeTimeout`.
    case tlsHandshake = "tls_handshake"
    /// A connection over `HTTPLimits.maxConnections`.
    case tooManyConnections = "too_many_connections"
    /// A request without the token its endpoint needs (401).
    case missingToken = "missing_token"
    /// A request with a wrong token (403).
    case wrongToken = "wrong_token"
    /// A request for an endpoint whose token the server does not have configured (403).
    case notConfigured = "not_configured"
    /// A request the handler answered 400: a body that is not the message the endpoint expects.
    case malformed
}

/// Counts rejections in a Prometheus registry (the coordinator's `/metrics`), one series per
/// `RejectionReason`, all present from the start with 0. Without a registry it counts nothing.
public final class RejectionCounters: Sendable {
    /// `vigil_http_rejected_total`.
    public static var name: String { descriptor.name }
    static var descriptor: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "vigil", subsystem: "http", metricName: "rejected", unitName: "total",
            helpText: "Requests and connections the HTTP server refused, by reason: oversized or malformed messages, protocol errors, TLS failures, missing or wrong tokens, connection limit.")
    }

    private let registry: PrometheusCollectorRegistry?

    public init(registry: PrometheusCollectorRegistry?) {
        self.registry = registry
        guard let registry else { return }
        for reason in RejectionReason.allCases {
            _ = registry.makeCounter(descriptor: Self.descriptor, labels: [("reason", reason.rawValue)])
        }
    }

    /// Counts nothing.
    public static let disabled = RejectionCounters(registry: nil)

    func count(_ reason: RejectionReason) {
        registry?.makeCounter(descriptor: Self.descriptor, labels: [("reason", reason.rawValue)]).increment()
    }
}

/// At most one log line per key and interval, so that a flood of bad connections cannot flood
/// the log too. Pure: the caller passes the time.
struct LogThrottle {
    let interval: Duration
    private var lastLogged: [String: ContinuousClock.Instant] = [:]
    private var suppressed: [String: Int] = [:]

    init(interval: Duration = .seconds(1)) {
        self.interval = interval
    }

    /// Whether to log an event of `key` at `now`; when it is, also how many of its events were
    /// not logged since the last line.
    mutating func permit(_ key: String, now: ContinuousClock.Instant) -> (log: Bool, suppressed: Int) {
        if let last = lastLogged[key], now - last < interval {
            suppressed[key, default: 0] += 1
            return (false, 0)
        }
        if lastLogged.count > 1_000 { lastLogged.removeAll() }  // keys are a small fixed set; never grow without bound
        lastLogged[key] = now
        return (true, suppressed.removeValue(forKey: key) ?? 0)
    }
}

/// A `LogThrottle` shared by the connections of one server.
final class ThrottledLog: Sendable {
    private let throttle = Locked(LogThrottle())
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Logs `message` at info level unless a line with the same `key` went out less than a second
    /// ago; the next line that goes out says how many were held back.
    func info(_ key: String, _ message: @autoclosure () -> String, metadata: Logger.Metadata = [:]) {
        let (log, suppressed) = throttle.withLock { $0.permit(key, now: .now) }
        guard log else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.info("\(message())", metadata: metadata)
    }
}
