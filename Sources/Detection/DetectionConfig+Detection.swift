extension DetectionConfig {
    /// Severity by magnitude, where magnitude is how far past its threshold a detector fired:
    /// `|z| / threshold` for z-scores, `ratio / threshold` for the volume ratio (so always >= 1
    /// for a firing detector). Below `medium` is low, below `high` medium, below `critical`
    /// high, else critical.
    public struct SeverityCuts: Codable, Sendable, Equatable {
        public var medium: Double
        public var high: Double
        public var critical: Double

        public init(medium: Double = 1.5, high: Double = 2.0, critical: Double = 3.0) {
            self.medium = medium
            self.high = high
            self.critical = critical
        }

        public func severity(magnitude: Double) -> Severity {
            if magnitude < medium { return .low }
            if magnitude < high { return .medium }
            if magnitude < critical { return .high }
            return .critical
        }
    }

    /// `severityCuts`, or the defaults when unset.
    public var effectiveSeverityCuts: SeverityCuts { severityCuts ?? SeverityCuts() }

    /// `volumeSpikeMinTrades`, or 5 when unset.
    public var effectiveVolumeSpikeMinTrades: Int { volumeSpikeMinTrades ?? 5 }

    /// Largest `windowMs / slideMs` and `allowedLatenessMs / slideMs` accepted; both size
    /// per-symbol state.
    public static let maxPanesPerWindow: Int64 = 1_000

    /// What makes this configuration unusable for detection, one line per problem naming the
    /// setting and what is expected; empty when valid. `PartitionProcessor` never traps on a
    /// bad configuration (it clamps to the nearest usable one, see `WindowGeometry`), so load
    /// paths should call this and refuse to start on problems.
    public func validationProblems() -> [String] {
        var problems: [String] = []
        if slideMs <= 0 {
            problems.append("slideMs must be > 0 (got \(slideMs))")
        } else {
            if windowMs <= 0 || windowMs % slideMs != 0 {
                problems.append("windowMs must be a positive multiple of slideMs \(slideMs) (got \(windowMs))")
            } else if windowMs / slideMs > Self.maxPanesPerWindow {
                problems.append("windowMs / slideMs must be at most \(Self.maxPanesPerWindow) (got \(windowMs / slideMs))")
            }
            if allowedLatenessMs / slideMs > Self.maxPanesPerWindow {
                problems.append("allowedLatenessMs / slideMs must be at most \(Self.maxPanesPerWindow)")
            }
        }
        if allowedLatenessMs < 0 { problems.append("allowedLatenessMs must be >= 0 (got \(allowedLatenessMs))") }
        if baselineWindows < 1 || baselineWindows > 10_000 {
            problems.append("baselineWindows must be in 1...10000 (got \(baselineWindows))")
        }
        if minHistory < 1 || minHistory > baselineWindows {
            problems.append("minHistory must be in 1...baselineWindows (\(baselineWindows)) (got \(minHistory))")
        }
        if !(zScoreThreshold > 0) || !zScoreThreshold.isFinite {
            problems.append("zScoreThreshold must be a finite number > 0 (got \(zScoreThreshold))")
        }
        if !(volumeSpikeRatio > 0) || !volumeSpikeRatio.isFinite {
            problems.append("volumeSpikeRatio must be a finite number > 0 (got \(volumeSpikeRatio))")
        }
        if cooldownMs < 0 { problems.append("cooldownMs must be >= 0 (got \(cooldownMs))") }
        let cuts = effectiveSeverityCuts
        if !(cuts.medium >= 1 && cuts.medium <= cuts.high && cuts.high <= cuts.critical && cuts.critical.isFinite) {
            problems.append("severityCuts must satisfy 1 <= medium <= high <= critical (got \(cuts.medium), \(cuts.high), \(cuts.critical))")
        }
        if effectiveVolumeSpikeMinTrades < 0 {
            problems.append("volumeSpikeMinTrades must be >= 0 (got \(effectiveVolumeSpikeMinTrades))")
        }
        problems += effectiveIsolationForest.validationProblems()
        problems += effectivePatterns.validationProblems()
        problems += inputLimits?.validationProblems() ?? []
        let quality = effectiveQualityMediumMagnitude
        if !(quality >= 1) || !quality.isFinite {
            problems.append("qualityMediumMagnitude must be a finite number >= 1 (got \(quality))")
        }
        for (symbol, overrides) in symbols.sorted(by: { $0.key < $1.key }) {
            if SymbolKey(symbol) == nil {
                problems.append("symbols.\(symbol): not a symbol (1-32 bytes of A-Z 0-9 _ -)")
            }
            if let z = overrides.zScoreThreshold, !(z > 0) || !z.isFinite {
                problems.append("symbols.\(symbol).zScoreThreshold must be a finite number > 0 (got \(z))")
            }
            if let r = overrides.volumeSpikeRatio, !(r > 0) || !r.isFinite {
                problems.append("symbols.\(symbol).volumeSpikeRatio must be a finite number > 0 (got \(r))")
            }
            if let c = overrides.cooldownMs, c < 0 {
                problems.append("symbols.\(symbol).cooldownMs must be >= 0 (got \(c))")
            }
        }
        return problems
    }
}

/// The window layout a processor runs with: `DetectionConfig` values clamped to usable ones.
///
/// Panes are `slideMs` long and aligned to multiples of it (pane `i` is
/// `[i * slideMs, (i + 1) * slideMs)`); the window starting at pane `s` is panes
/// `s ..< s + panesPerWindow`, i.e. `[s * slideMs, s * slideMs + windowMs)`.
///
/// Clamping (only for configurations `validationProblems()` rejects): `slideMs` >= 1;
/// `windowMs` rounded up to a multiple of `slideMs`, 1...`maxPanesPerWindow` panes; lateness
/// 0...`maxPanesPerWindow` slides; `baselineWindows` 1...10000; `minHistory` 1...baselineWindows.
struct WindowGeometry: Equatable, Sendable {
    let windowMs: Int64
    let slideMs: Int64
    let latenessMs: Int64
    let panesPerWindow: Int64
    let baselineWindows: Int
    let minHistory: Int
    /// Panes a symbol may need at once: those of the next window to close up to the newest
    /// pane an on-time trade can reach (see `SymbolWindows`).
    let ringCapacity: Int

    init(_ config: DetectionConfig) {
        let slide = max(1, config.slideMs)
        let panes = min(max(1, config.windowMs / slide + (config.windowMs % slide > 0 ? 1 : 0)), DetectionConfig.maxPanesPerWindow)
        slideMs = slide
        panesPerWindow = panes
        windowMs = panes * slide
        latenessMs = min(max(0, config.allowedLatenessMs), DetectionConfig.maxPanesPerWindow * slide)
        baselineWindows = min(max(1, config.baselineWindows), 10_000)
        minHistory = min(max(1, config.minHistory), baselineWindows)
        ringCapacity = Int(panes + latenessMs / slide + 2)
    }

    /// The pane holding event time `t`.
    @inline(__always)
    func pane(of t: Int64) -> Int64 { floorDivide(t, slideMs) }

    /// Most windows one symbol closes in one catch-up after a long silence (see
    /// `SymbolWindows.closeDue`).
    var catchUpCap: Int64 { Int64(baselineWindows) + panesPerWindow }
}
