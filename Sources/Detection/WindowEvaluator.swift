/// Turns the detectors' findings on one closed window into anomalies: which findings the
/// policy reports, their severity and quality, and the cooldown.
///
/// - Policy: `any` reports every firing detector; `zscore`, `volume`, `isolation_forest` and
///   `patterns` only their own family. `filtered` reports z-score and volume findings only when
///   the Isolation Forest also fires on the window (so never before the symbol's first forest),
///   and pattern findings on their own (each rule is already a conjunction of conditions); the
///   forest's own `isolation_outlier` is its vote, not an anomaly, under `filtered`.
/// - One anomaly per kind and window: when two reported findings share a kind, the one with the
///   larger magnitude stands (the first listed on a tie).
/// - Severity: from the finding's magnitude (`|score| / threshold`) through the symbol's
///   `SeverityCuts`.
/// - Quality: high when detectors of two or more families fire on the window (whatever the
///   policy reports, independent agreement is evidence); else medium when this finding fired at
///   `qualityMediumMagnitude` (1.5) times its threshold or more; else low.
/// - Cooldown: see `Cooldowns`.
enum WindowEvaluator {
    /// Every detector, in the order their findings are listed.
    static let detectors: [any WindowDetector] = [
        ZScoreDetector(), VolumeSpikeDetector(), IsolationForestDetector(), PatternDetector(),
    ]

    /// Whether `policy` reports a firing finding of `family`, given whether the forest fired.
    static func reports(_ family: DetectorFamily, under policy: DetectionConfig.Policy, forestAgrees: Bool) -> Bool {
        switch policy {
        case .any: true
        case .filtered: family == .patterns || ((family == .zScore || family == .volume) && forestAgrees)
        case .zscore: family == .zScore
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

    /// Every detector's findings on the window, fired or not.
    static func findings(_ input: DetectorInput) -> [DetectorFinding] {
        var findings: [DetectorFinding] = []
        for detector in detectors {
            detector.evaluate(input, into: &findings)
        }
        return findings
    }

    /// What the processor needs to know about a window after its evaluation.
    struct Outcome: Equatable {
        /// Kinds of the pattern findings that fired (reported or not), for the pattern memory.
        var firedPatterns: Set<AnomalyKind> = []
        /// Whether any detector besides the Isolation Forest fired: such a window stays out of
        /// the forest's training history.
        var flagged = false
    }

    /// Appends the window's anomalies (suppressed ones included) and says what fired.
    static func evaluate(
        _ input: DetectorInput, cooldowns: inout Cooldowns, context: Context, into anomalies: inout [Anomaly]
    ) -> Outcome {
        let findings = findings(input)
        let settings = input.settings
        var outcome = Outcome()
        var families: [DetectorFamily] = []
        for finding in findings where finding.fired {
            if finding.family == .patterns { outcome.firedPatterns.insert(finding.kind) }
            if finding.family != .isolationForest { outcome.flagged = true }
            if !families.contains(finding.family) { families.append(finding.family) }
        }
        guard !families.isEmpty else { return outcome }
        let forestAgrees = families.contains(.isolationForest)
        var scores: [String: Double] = [:]
        for finding in findings { scores[finding.scoreName] = finding.score }

        // The strongest reported finding of each kind, in order of first appearance.
        var chosen: [DetectorFinding] = []
        for finding in findings
        where finding.fired && reports(finding.family, under: settings.policy, forestAgrees: forestAgrees) {
            if let i = chosen.firstIndex(where: { $0.kind == finding.kind }) {
                if finding.magnitude > chosen[i].magnitude { chosen[i] = finding }
            } else {
                chosen.append(finding)
            }
        }
        for finding in chosen {
            let quality: Quality =
                families.count >= 2 ? .high : finding.magnitude >= settings.qualityMediumMagnitude ? .medium : .low
            let severity = settings.severityCuts.severity(magnitude: finding.magnitude)
            let suppressed = cooldowns.isSuppressed(
                kind: finding.kind, severity: severity, windowEndMs: context.endMs, cooldownMs: settings.cooldownMs)
            anomalies.append(Anomaly(
                id: Anomaly.makeID(symbol: context.symbol, windowStartMs: context.startMs, kind: finding.kind),
                symbol: context.symbol, kind: finding.kind, severity: severity,
                quality: quality, windowStartMs: context.startMs, windowEndMs: context.endMs,
                detectedAtMs: context.detectedAtMs, value: finding.value, expected: finding.expected,
                scores: scores, description: describe(finding, symbol: context.symbol, window: input.window),
                suppressed: suppressed, partition: context.partition, offset: context.offset))
        }
        return outcome
    }

    /// One line for people, e.g. "BTCUSDT price_shock: return -2.31% vs median 0.01% (z=-7.9)".
    static func describe(_ finding: DetectorFinding, symbol: String, window: WindowFeatures) -> String {
        let head = "\(symbol) \(finding.kind.rawValue): "
        switch finding.kind {
        case .priceShock:
            return head + "return \(percent(finding.value)) vs median \(percent(finding.expected)) (z=\(formatFixed(finding.score, decimals: 1)))"
        case .volatilityShock:
            return head + "volatility \(percent(finding.value)) vs median \(percent(finding.expected)) (z=\(formatFixed(finding.score, decimals: 1)))"
        case .volumeSpike where finding.scoreName == "z_volume":
            return head + "quote volume \(formatFixed(finding.value, decimals: 2)) vs median \(formatFixed(finding.expected, decimals: 2)) (z=\(formatFixed(finding.score, decimals: 1)), \(window.count) trades)"
        case .volumeSpike where finding.scoreName == "recent_volume_ratio":
            return head + "newest pane quote volume \(formatFixed(finding.value, decimals: 2)) vs \(formatFixed(finding.expected, decimals: 2)) per pane (\(formatFixed(finding.score, decimals: 1))x, \(window.count) trades in the window)"
        case .volumeSpike:
            return head + "quote volume \(formatFixed(finding.value, decimals: 2)) vs median \(formatFixed(finding.expected, decimals: 2)) (\(formatFixed(finding.score, decimals: 1))x, \(window.count) trades)"
        case .tradeCountSpike:
            return head + "\(window.count) trades vs median \(formatFixed(finding.expected, decimals: 0)) (z=\(formatFixed(finding.score, decimals: 1)))"
        case .isolationOutlier:
            return head + "isolation score \(formatFixed(finding.score, decimals: 3)) (threshold \(formatFixed(finding.threshold, decimals: 3)))"
        case .flashCrash:
            let verb = finding.value < 0 ? "fell" : "spiked"
            return head + "\(verb) \(percent(abs(naturalExp(finding.value) - 1))) (z=\(formatFixed(finding.score, decimals: 1))) then reverted to \(window.close)"
        case .pumpAndDump:
            return head + "rose \(percent(naturalExp(finding.value) - 1)) on buying (z=\(formatFixed(finding.score, decimals: 1))), then dumped to \(window.close) with taker-buy ratio \(formatFixed(window.takerBuyRatio, decimals: 2))"
        case .volatilityBurst:
            return head + "volatility \(percent(finding.value)) vs median \(percent(finding.expected)) with a net move of \(percent(window.logReturn)) (z=\(formatFixed(finding.score, decimals: 1)))"
        case .liquidityGap:
            return head + "no trade for \(formatFixed(finding.value / 1_000, decimals: 1)) s where about \(formatFixed(finding.score, decimals: 0)) were expected"
        }
    }

    private static func percent(_ fraction: Double) -> String {
        formatFixed(fraction * 100, decimals: 2) + "%"
    }
}

/// Cooldown per (symbol, kind), in event time.
///
/// An anomaly whose window ends less than `cooldownMs` after the end of the window of the last
/// *alerted* (not suppressed) anomaly of the same kind, and whose severity is not above that
/// alert's, is suppressed: still reported and stored, flagged, not alerted. A condition that
/// persists therefore alerts again once per cooldown, and one that escalates (a minor move
/// followed by a crash) alerts at once: a low alert never hides a critical one.
struct Cooldowns: Equatable, Sendable {
    /// The last alerted anomaly of each kind: its window end and severity.
    struct Alert: Equatable, Sendable {
        var endMs: Int64
        var severity: Severity
    }

    private(set) var lastAlerted: [AnomalyKind: Alert] = [:]

    init(lastAlerted: [AnomalyKind: Alert] = [:]) {
        self.lastAlerted = lastAlerted
    }

    /// Whether an anomaly of `kind` and `severity` in the window ending at `windowEndMs` is a
    /// suppressed repeat; records it as the last alert when it is not.
    mutating func isSuppressed(kind: AnomalyKind, severity: Severity, windowEndMs: Int64, cooldownMs: Int64) -> Bool {
        // Saturating: a restored `endMs` can be anything a snapshot said (found by fuzzing).
        if let last = lastAlerted[kind], windowEndMs.subtractingSaturated(last.endMs) < cooldownMs, severity <= last.severity {
            return true
        }
        lastAlerted[kind] = Alert(endMs: windowEndMs, severity: severity)
        return false
    }
}
