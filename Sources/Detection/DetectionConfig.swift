/// How detection behaves. Loaded by the coordinator from cluster.conf and handed to every
/// worker when it registers, so that workers and `vigil detect` run with identical settings.
public struct DetectionConfig: Codable, Sendable, Equatable {
    /// Window length (ms). Windows are `[start, start + windowMs)`.
    public var windowMs: Int64 = 60_000
    /// Window slide (ms); window starts are multiples of it. Must divide `windowMs`.
    public var slideMs: Int64 = 20_000
    /// The watermark of a partition is its largest event time minus this.
    public var allowedLatenessMs: Int64 = 10_000
    /// Closed windows in a symbol's rolling baseline.
    public var baselineWindows: Int = 12
    /// Closed windows a symbol needs before any alert (warm-up).
    public var minHistory: Int = 6
    public var zScoreThreshold: Double = 3.5
    public var volumeSpikeRatio: Double = 3.0
    /// Which detectors must fire for an anomaly to be reported.
    public var policy: Policy = .filtered
    /// Repeats of the same symbol and kind within this many ms are stored as suppressed.
    public var cooldownMs: Int64 = 120_000
    /// Per-symbol overrides, keyed by symbol (e.g. "BTCUSDT").
    public var symbols: [String: SymbolOverrides] = [:]
    /// Severity cut points, as multiples of the detector's threshold; nil means
    /// `SeverityCuts()` (1.5x, 2x, 3x). Optional so that settings encoded before it existed decode.
    public var severityCuts: SeverityCuts?
    /// Fewest trades a window needs before it can be a volume spike (one trade in a dead market
    /// is not a spike); nil means 5. Optional for the same reason as `severityCuts`.
    public var volumeSpikeMinTrades: Int?
    /// The Isolation Forest: history, retraining and score threshold; nil means
    /// `IsolationForestSettings()`. Optional for the same reason as `severityCuts`.
    public var isolationForest: IsolationForestSettings?
    /// Thresholds of the pattern rules; nil means `PatternSettings()`. Optional likewise.
    public var patterns: PatternSettings?
    /// Magnitude (`|score| / threshold`) at which a finding that no other detector family
    /// confirms earns medium quality; nil means 1.5. Optional likewise.
    public var qualityMediumMagnitude: Double?
    /// Bounds on what a record may claim (symbols per partition, trade time, price, quantity,
    /// repeated trade ids); a record outside them is a `MalformedRecord`. nil: no such checks
    /// (a bare `DetectionConfig()`); cluster.conf starts from `InputLimits()`.
    public var inputLimits: InputLimits?

    public enum Policy: String, Codable, Sendable, CaseIterable {
        /// Z-score (and volume) findings count only when the Isolation Forest agrees; pattern
        /// rules, each already a conjunction of conditions, count on their own.
        case filtered
        /// Any detector suffices.
        case any
        case zscore
        case volume
        case isolationForest = "isolation_forest"
        case patterns
    }

    public struct SymbolOverrides: Codable, Sendable, Equatable {
        public var zScoreThreshold: Double?
        public var volumeSpikeRatio: Double?
        public var policy: Policy?
        public var cooldownMs: Int64?

        public init(zScoreThreshold: Double? = nil, volumeSpikeRatio: Double? = nil, policy: Policy? = nil, cooldownMs: Int64? = nil) {
            self.zScoreThreshold = zScoreThreshold
            self.volumeSpikeRatio = volumeSpikeRatio
            self.policy = policy
            self.cooldownMs = cooldownMs
        }
    }

    public init() {}

    public func zScoreThreshold(for symbol: String) -> Double {
        symbols[symbol]?.zScoreThreshold ?? zScoreThreshold
    }
    public func volumeSpikeRatio(for symbol: String) -> Double {
        symbols[symbol]?.volumeSpikeRatio ?? volumeSpikeRatio
    }
    public func policy(for symbol: String) -> Policy {
        symbols[symbol]?.policy ?? policy
    }
    public func cooldownMs(for symbol: String) -> Int64 {
        symbols[symbol]?.cooldownMs ?? cooldownMs
    }
}
