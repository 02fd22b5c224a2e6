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
    var qualityMediumMagnitude: Double
    var isolationThreshold: Double
    var patterns: DetectionConfig.PatternSettings

    init(config: DetectionConfig, symbol: String) {
        zScoreThreshold = config.zScoreThreshold(for: symbol)
        volumeSpikeRatio = config.volumeSpikeRatio(for: symbol)
        volumeSpikeMinTrades = config.effectiveVolumeSpikeMinTrades
        policy = config.policy(for: symbol)
        cooldownMs = config.cooldownMs(for: symbol)
        severityCuts = config.effectiveSeverityCuts
        qualityMediumMagnitude = config.effectiveQualityMediumMagnitude
        isolationThreshold = config.effectiveIsolationForest.threshold
        patterns = config.effectivePatterns
    }
}

/// Everything a detector may read about one closed window of one symbol.
struct DetectorInput: Sendable {
    var window: WindowFeatures
    var baseline: BaselineStatistics
    var settings: SymbolSettings
    /// Window length (ms), for rates.
    var windowMs: Int64
    /// Panes (slides) per window.
    var panesPerWindow: Int64
    /// The symbol's Isolation Forest score of the window; nil while no forest is trained yet.
    var isolationScore: Double?
    /// What the pattern rules remember of the symbol's previous windows.
    var patterns: PatternMemory
    /// End of the window (ms), for the pattern rules' memory.
    var endMs: Int64
}

/// A detector over a closed window's features and its symbol's baseline.
///
/// Detectors are pure: each appends one finding per kind it can score (fired or not, so that
/// scores reach the anomaly of any other detector that fires). State a detector needs across
/// windows (the forest, the pattern memory) is kept by the processor and passed in.
protocol WindowDetector: Sendable {
    var family: DetectorFamily { get }
    func evaluate(_ input: DetectorInput, into findings: inout [DetectorFinding])
}

/// Z-scores against the baseline's median and robust scale (`RobustEstimate`), firing at
/// `|z| >= zScoreThreshold(for:)`:
/// - `price_shock`: the window's log return, either direction;
/// - `volatility_shock`: its realized volatility, upward only (calm is not a shock);
/// - `volume_spike` (`z_volume`): `ln(1 + quote volume)`, upward only, with at least
///   `volumeSpikeMinTrades` trades and a baseline whose median window has volume;
/// - `trade_count_spike`: `ln(1 + trades)`, upward only, with at least `volumeSpikeMinTrades`
///   trades, and only against a baseline whose median window has trades (a dead market waking
///   up is not a spike; the pattern rules judge silences).
struct ZScoreDetector: WindowDetector {
    var family: DetectorFamily { .zScore }

    func evaluate(_ input: DetectorInput, into findings: inout [DetectorFinding]) {
        let window = input.window
        let baseline = input.baseline
        let threshold = input.settings.zScoreThreshold
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
        let enough = window.count >= Int64(input.settings.volumeSpikeMinTrades)
        if baseline.medianQuoteVolume > 0 {
            let zVolume = baseline.logQuoteVolume.zScore(naturalLog(1 + window.quoteVolume))
            findings.append(DetectorFinding(
                kind: .volumeSpike, family: family, value: window.quoteVolume,
                expected: baseline.medianQuoteVolume, scoreName: "z_volume", score: zVolume,
                threshold: threshold, fired: zVolume >= threshold && enough))
        }
        guard baseline.medianTradeCount > 0 else { return }
        let zCount = baseline.logCount.zScore(naturalLog(1 + Double(window.count)))
        findings.append(DetectorFinding(
            kind: .tradeCountSpike, family: family, value: Double(window.count),
            expected: baseline.medianTradeCount, scoreName: "z_count", score: zCount,
            threshold: threshold,
            fired: zCount >= threshold && window.count >= Int64(input.settings.volumeSpikeMinTrades)))
    }
}

/// Volume spike, two ways, with at least `volumeSpikeMinTrades` trades in the window:
/// - `volume_ratio`: window quote volume / baseline median quote volume, firing at
///   `volumeSpikeRatio(for:)`;
/// - `recent_volume_ratio`: the quote volume of the window's last pane (its newest `slideMs`)
///   against the median's share for one pane (`median * slideMs / windowMs`), firing at 1.5 x
///   `volumeSpikeRatio`. A burst that began in the last seconds of the window shows here at full
///   strength one window earlier; the higher bar pays for one pane's noisier volume.
/// When the baseline median is 0 (a mostly dead market) there is no ratio to speak of and no
/// finding: a market coming back to life is for the pattern rules.
struct VolumeSpikeDetector: WindowDetector {
    var family: DetectorFamily { .volume }
    static let recentThresholdFactor = 1.5

    func evaluate(_ input: DetectorInput, into findings: inout [DetectorFinding]) {
        let window = input.window
        let baseline = input.baseline
        guard baseline.medianQuoteVolume > 0 else { return }
        let enough = window.count >= Int64(input.settings.volumeSpikeMinTrades)
        let ratio = window.quoteVolume / baseline.medianQuoteVolume
        let threshold = input.settings.volumeSpikeRatio
        findings.append(DetectorFinding(
            kind: .volumeSpike, family: family, value: window.quoteVolume,
            expected: baseline.medianQuoteVolume, scoreName: "volume_ratio", score: ratio,
            threshold: threshold, fired: ratio >= threshold && enough))
        guard input.panesPerWindow > 1 else { return }
        let paneShare = baseline.medianQuoteVolume / Double(input.panesPerWindow)
        let recent = window.recentQuoteVolume / paneShare
        let recentThreshold = threshold * Self.recentThresholdFactor
        findings.append(DetectorFinding(
            kind: .volumeSpike, family: family, value: window.recentQuoteVolume, expected: paneShare,
            scoreName: "recent_volume_ratio", score: recent, threshold: recentThreshold,
            fired: recent >= recentThreshold && enough))
    }
}

/// `isolation_outlier`: the symbol's Isolation Forest scores the window at or above
/// `isolationForest.threshold` (scores are in (0, 1], ordinary windows about 0.5 or less).
/// No finding while the symbol has no forest yet (fewer than `minTrainingWindows` windows).
struct IsolationForestDetector: WindowDetector {
    var family: DetectorFamily { .isolationForest }

    func evaluate(_ input: DetectorInput, into findings: inout [DetectorFinding]) {
        guard let score = input.isolationScore else { return }
        let threshold = input.settings.isolationThreshold
        findings.append(DetectorFinding(
            kind: .isolationOutlier, family: family, value: score, expected: 0.5,
            scoreName: "isolation", score: score, threshold: threshold, fired: score >= threshold))
    }
}
