import Detection

/// What an `Ingestor` run did.
///
/// `produced` counts records the sink accepted; of those, `delivered` were acknowledged,
/// `failed` failed for good and `pending` were still unacknowledged when the final flush timed
/// out (`produced == delivered + failed + pending` for a sink used by one run only).
/// Malformed input lines were never produced.
public struct IngestReport: Sendable, Equatable {
    public var produced = 0
    public var delivered = 0
    public var failed = 0
    public var pending = 0
    /// The first delivery failure, or why the final flush did not complete.
    public var deliveryError: String?
    /// Input lines skipped because they had no usable symbol or trade time.
    public var malformed = 0
    /// The first skipped lines, with their line numbers and reasons.
    public var malformedSamples: [MalformedLine] = []
    /// Records produced per symbol.
    public var perSymbol: [String: Int] = [:]
    /// Labels of the injected anomalies the stream reached (simulator only), in start order.
    public var labels: [AnomalyLabel] = []
    /// Trade times of the first and last record produced.
    public var firstTimeMs: Int64?
    public var lastTimeMs: Int64?
    /// Wall time of the run, by the ingestor's clock.
    public var elapsed: Duration = .zero
    /// True when the run stopped early because its task was cancelled.
    public var cancelled = false

    public init() {}

    /// Records produced per second of wall time (0 for an instant run).
    public var recordsPerSecond: Double {
        let seconds = elapsed.inSeconds
        return seconds > 0 ? Double(produced) / seconds : 0
    }
}
