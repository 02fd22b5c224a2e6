/// Families of detectors, as `DetectionConfig.Policy` names them.
enum DetectorFamily: Sendable, Equatable {
    case zScore
    case volume
    case isolationForest
    case patterns
}

/// One detector's verdict on one window for one kind of anomaly.
struct DetectorFinding: Equatable, Sendable {
    var kind: AnomalyKind
    var family: DetectorFamily
    /// The observed feature (e.g. the window's log return).
    var value: Double
    /// What the baseline expected for it (its median).
    var expected: Double
    /// Key in `Anomaly.scores`, e.g. "z_return".
    var scoreName: String
    /// The z-score or ratio.
    var score: Double
    var threshold: Double
    var fired: Bool

    /// How far past the threshold the score is: `|score| / threshold`.
    var magnitude: Double { abs(score) / threshold }
}

/// The per-symbol settings detectors read, resolved once when a symbol is first seen.
struct SymbolSettings: Equatable, Sendable {
    var zScoreThreshold: Double
    var volumeSpikeRatio: Double
    var volumeSpikeMinTrades: Int
    var policy: DetectionConfig.Policy
    var cooldownMs: Int64
    var severityCuts: DetectionConfig.SeverityCuts

    init(config: DetectionConfig, symbol: String) {
        zScoreThreshold = config.zScoreThreshold(for: symbol)
        volumeSpikeRatio = config.volumeSpikeRatio(for: symbol)
        volumeSpikeMinTrades = config.effectiveVolumeSpikeMinTrades
        policy = config.policy(for: symbol)
        cooldownMs = config.cooldownMs(for: symbol)
        severityCuts = config.effectiveSeverityCuts
    }
}

/// A detector over a closed window's features and its symbol's baseline.
///
/// Detectors are pure and stateless; each appends one finding per kind it can score (fired or
/// not, so that scores reach the anomaly of any other detector that fires). Isolation Forest
/// and the pattern rules join as more conformances over the same `WindowFeatures`.
protocol WindowDetector: Sendable {
    var family: DetectorFamily { get }
    func evaluate(
        _ window: WindowFeatures, baseline: BaselineStatistics, settings: SymbolSettings,
        into findings: inout [DetectorFinding])
}

/// Z-scores of the window's log return (`price_shock`, either direction) and realized
/// volatility (`volatility_shock`, upward only: calm is not a shock) against the baseline's
/// median and robust scale (`RobustEstimate`). Fires at `|z| >= zScoreThreshold(for:)`.
struct ZScoreDetector: WindowDetector {
    var family: DetectorFamily { .zScore }

    func evaluate(
        _ window: WindowFeatures, baseline: BaselineStatistics, settings: SymbolSettings,
        into findings: inout [DetectorFinding]
    ) {
        let threshold = settings.zScoreThreshold
        let zReturn = baseline.logReturn.zScore(window.logReturn)
        findings.append(DetectorFinding(
            kind: .priceShock, family: family, value: window.logReturn,
            expected: baseline.logReturn.median, scoreName: "z_return", score: zReturn,
            threshold: threshold, fired: abs(zReturn) >= threshold))
        let zVolatility = baseline.volatility.zScore(window.volatility)
        findings.append(DetectorFinding(
            kind: .volatilityShock, family: family, value: window.volatility,
            expected: baseline.volatility.median, scoreName: "z_volatility", score: zVolatility,
            threshold: threshold, fired: zVolatility >= threshold))
    }
}

/// Volume spike: `ratio = window quote volume / baseline median quote volume`, firing at
/// `ratio >= volumeSpikeRatio(for:)` when the window has at least `volumeSpikeMinTrades`
/// trades. When the baseline median is 0 (a mostly dead market) there is no ratio to speak
/// of and no finding: a market coming back to life is for the pattern rules.
struct VolumeSpikeDetector: WindowDetector {
    var family: DetectorFamily { .volume }

    func evaluate(
        _ window: WindowFeatures, baseline: BaselineStatistics, settings: SymbolSettings,
        into findings: inout [DetectorFinding]
    ) {
        guard baseline.medianQuoteVolume > 0 else { return }
        let ratio = window.quoteVolume / baseline.medianQuoteVolume
        let threshold = settings.volumeSpikeRatio
        findings.append(DetectorFinding(
            kind: .volumeSpike, family: family, value: window.quoteVolume,
            expected: baseline.medianQuoteVolume, scoreName: "volume_ratio", score: ratio,
            threshold: threshold,
            fired: ratio >= threshold && window.count >= Int64(settings.volumeSpikeMinTrades)))
    }
}
