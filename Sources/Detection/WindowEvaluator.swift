/// Turns the detectors' findings on one closed window into anomalies: which findings the
/// policy reports, their severity and quality, and the cooldown.
///
/// - Policy: `any` reports every firing detector; `zscore` and `volume` only their own
///   family. `filtered` is meant as "z-score AND Isolation Forest agree"; until the forest
///   exists it behaves exactly like `zscore`. `isolation_forest` and `patterns` name detectors
///   that do not exist yet, so under them nothing is reported.
/// - Severity: from the finding's magnitude (`|score| / threshold`) through the symbol's
///   `SeverityCuts`.
/// - Quality: high when two or more detectors fire on the window (whatever the policy reports,
///   agreement is evidence); else medium when this one fired at >= 1.5x its threshold; else low.
/// - Cooldown: see `Cooldowns`.
enum WindowEvaluator {
    /// Every detector, in the order their findings are listed.
    static let detectors: [any WindowDetector] = [ZScoreDetector(), VolumeSpikeDetector()]

    /// Magnitude at which a lone firing detector earns medium quality.
    static let mediumQualityMagnitude = 1.5

    static func reports(_ family: DetectorFamily, under policy: DetectionConfig.Policy) -> Bool {
        switch policy {
        case .any: true
        case .zscore, .filtered: family == .zScore
        case .volume: family == .volume
        case .isolationForest: family == .isolationForest
        case .patterns: family == .patterns
        }
    }

    /// Everything a closed window's anomalies carry besides the findings.
    struct Context {
        var symbol: String
        var startMs: Int64
        var endMs: Int64
        var detectedAtMs: Int64
        var partition: Int32
        var offset: Int64
    }

    /// Appends the window's anomalies (suppressed ones included) and returns how many.
    static func evaluate(
        _ window: WindowFeatures, baseline: BaselineStatistics, settings: SymbolSettings,
        cooldowns: inout Cooldowns, context: Context, into anomalies: inout [Anomaly]
    ) -> Int {
        var findings: [DetectorFinding] = []
        for detector in detectors {
            detector.evaluate(window, baseline: baseline, settings: settings, into: &findings)
        }
        let firing = findings.reduce(0) { $0 + ($1.fired ? 1 : 0) }
        guard firing > 0 else { return 0 }
        var scores: [String: Double] = [:]
        for finding in findings { scores[finding.scoreName] = finding.score }

        var emitted = 0
        for finding in findings where finding.fired && reports(finding.family, under: settings.policy) {
            let quality: Quality =
                firing >= 2 ? .high : finding.magnitude >= mediumQualityMagnitude ? .medium : .low
            let suppressed = cooldowns.isSuppressed(
                kind: finding.kind, windowEndMs: context.endMs, cooldownMs: settings.cooldownMs)
            anomalies.append(Anomaly(
                id: Anomaly.makeID(symbol: context.symbol, windowStartMs: context.startMs, kind: finding.kind),
                symbol: context.symbol, kind: finding.kind,
                severity: settings.severityCuts.severity(magnitude: finding.magnitude),
                quality: quality, windowStartMs: context.startMs, windowEndMs: context.endMs,
                detectedAtMs: context.detectedAtMs, value: finding.value, expected: finding.expected,
                scores: scores, description: describe(finding, symbol: context.symbol, window: window),
                suppressed: suppressed, partition: context.partition, offset: context.offset))
            emitted += 1
        }
        return emitted
    }

    /// One line for people, e.g. "BTCUSDT price_shock: return -2.31% vs median 0.01% (z=-7.9)".
    static func describe(_ finding: DetectorFinding, symbol: String, window: WindowFeatures) -> String {
        let head = "\(symbol) \(finding.kind.rawValue): "
        switch finding.kind {
        case .priceShock:
            return head + "return \(percent(finding.value)) vs median \(percent(finding.expected)) (z=\(formatFixed(finding.score, decimals: 1)))"
        case .volatilityShock:
            return head + "volatility \(percent(finding.value)) vs median \(percent(finding.expected)) (z=\(formatFixed(finding.score, decimals: 1)))"
        case .volumeSpike:
            return head + "quote volume \(formatFixed(finding.value, decimals: 2)) vs median \(formatFixed(finding.expected, decimals: 2)) (\(formatFixed(finding.score, decimals: 1))x, \(window.count) trades)"
        default:
            return head + "\(finding.scoreName)=\(formatFixed(finding.score, decimals: 2)) (threshold \(formatFixed(finding.threshold, decimals: 2)))"
        }
    }

    private static func percent(_ fraction: Double) -> String {
        formatFixed(fraction * 100, decimals: 2) + "%"
    }
}

/// Cooldown per (symbol, kind), in event time.
///
/// An anomaly whose window ends less than `cooldownMs` after the end of the window of the last
/// *alerted* (not suppressed) anomaly of the same kind is suppressed: still reported and stored,
/// flagged, not alerted. A condition that persists therefore alerts again once per cooldown.
struct Cooldowns: Equatable, Sendable {
    /// Window end of the last alerted anomaly, by kind.
    private(set) var lastAlertedEndMs: [AnomalyKind: Int64] = [:]

    init(lastAlertedEndMs: [AnomalyKind: Int64] = [:]) {
        self.lastAlertedEndMs = lastAlertedEndMs
    }

    /// Whether an anomaly of `kind` in the window ending at `windowEndMs` is a suppressed
    /// repeat; records it as the last alert when it is not.
    mutating func isSuppressed(kind: AnomalyKind, windowEndMs: Int64, cooldownMs: Int64) -> Bool {
        if let last = lastAlertedEndMs[kind], windowEndMs - last < cooldownMs {
            return true
        }
        lastAlertedEndMs[kind] = windowEndMs
        return false
    }
}
