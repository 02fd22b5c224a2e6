import Detection

/// Filters of `GET /v1/anomalies`. Results are newest first: by `detectedAtMs` (event time)
/// descending, then window start descending, then id, so the order is stable across calls.
public struct AnomalyQuery: Sendable, Equatable {
    public static let defaultLimit = 100

    /// Only anomalies with `detectedAtMs >= sinceMs` (event time, ms).
    public var sinceMs: Int64?
    public var symbol: String?
    public var kind: AnomalyKind?
    /// Minimum severity: `.high` returns high and critical.
    public var minSeverity: Severity?
    /// Only acknowledged (`true`) or only unacknowledged (`false`) anomalies; nil for both.
    public var acknowledged: Bool?
    /// At most this many (at least 1; there is no upper bound: a harness may ask for everything).
    public var limit: Int

    public init(sinceMs: Int64? = nil, symbol: String? = nil, kind: AnomalyKind? = nil, minSeverity: Severity? = nil, acknowledged: Bool? = nil, limit: Int = AnomalyQuery.defaultLimit) {
        self.sinceMs = sinceMs
        self.symbol = symbol
        self.kind = kind
        self.minSeverity = minSeverity
        self.acknowledged = acknowledged
        self.limit = limit
    }

    /// Parses `since`, `symbol`, `kind`, `severity`, `acknowledged` and `limit` query parameters.
    /// Throws `QueryError` naming the parameter and what it accepts.
    public init(parameters: [String: String]) throws {
        self.init()
        if let since = parameters["since"] {
            guard let value = Int64(since) else {
                throw QueryError("since must be a time in ms since the Unix epoch, got \"\(since)\"")
            }
            sinceMs = value
        }
        if let symbol = parameters["symbol"], !symbol.isEmpty {
            self.symbol = symbol
        }
        if let kind = parameters["kind"] {
            guard let value = AnomalyKind(rawValue: kind) else {
                let valid = AnomalyKind.allCases.map(\.rawValue).joined(separator: ", ")
                throw QueryError("kind must be one of \(valid), got \"\(kind)\"")
            }
            self.kind = value
        }
        if let severity = parameters["severity"] {
            guard let value = Severity(rawValue: severity) else {
                let valid = Severity.allCases.map(\.rawValue).joined(separator: ", ")
                throw QueryError("severity (a minimum) must be one of \(valid), got \"\(severity)\"")
            }
            minSeverity = value
        }
        if let acknowledged = parameters["acknowledged"] {
            switch acknowledged {
            case "true": self.acknowledged = true
            case "false": self.acknowledged = false
            default: throw QueryError("acknowledged must be true or false, got \"\(acknowledged)\"")
            }
        }
        if let limit = parameters["limit"] {
            guard let value = Int(limit), value >= 1 else {
                throw QueryError("limit must be a positive integer, got \"\(limit)\"")
            }
            self.limit = value
        }
    }

    /// A query parameter the coordinator cannot use; the message says which and what it accepts.
    public struct QueryError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }
}
