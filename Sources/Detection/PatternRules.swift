/// What the pattern rules remember of a symbol's recent windows: the sharp move a flash crash
/// (or spike) may be reverting, and the pump a dump may end. Part of the snapshot.
///
/// Moves are measured in units of `PatternDetector.moveScale` at the time the move was first
/// seen (`moveScale`, `pumpScale`), so that the move itself, once it fills the baseline, does
/// not stretch its own yardstick.
struct PatternMemory: Equatable, Sendable {
    /// -1 after a sharp drop, +1 after a sharp rise, 0 when no move is remembered.
    var moveDirection: Int8 = 0
    /// The price before the move (the open of the window that first showed it).
    var moveReference = 0.0
    /// The extreme price since: the lowest low after a drop, the highest high after a rise.
    var moveExtreme = 0.0
    var moveScale = 0.0
    /// End of the window that first showed the move (ms).
    var moveSeenAtMs: Int64 = 0
    /// The price before the pump (the open of its first window); 0 when no pump is remembered.
    var pumpBase = 0.0
    /// The highest high since the pump began.
    var pumpPeak = 0.0
    var pumpScale = 0.0
    /// End of the last window that looked like a pump (ms).
    var pumpLastMs: Int64 = 0

    /// How long a sharp move is remembered while waiting for its reversion.
    static let moveMemoryMs: Int64 = 150_000
    /// How long after its last rising window a pump is remembered while waiting for the dump.
    static let pumpMemoryMs: Int64 = 300_000
    /// A pump window's taker-buy ratio is at least this, and its quote volume at least
    /// `pumpVolumeRatio` times the baseline median.
    static let pumpBuyRatio = 0.6
    static let pumpVolumeRatio = 2.0
    /// A volatility burst's realized volatility is at least this fraction of its log range: the
    /// price whipsawed rather than travelled (a crash's window has a ratio near 0.1).
    static let burstPathRatio = 0.75
    /// And its net move at most this fraction of its realized volatility: one clean jump has a
    /// volatility equal to its range and to its return, a whipsaw a volatility far above both.
    static let burstNetMoveRatio = 0.5

    /// The remembered move, if still fresh at the window ending at `endMs`.
    func activeMove(at endMs: Int64) -> Int8 {
        moveDirection != 0 && endMs - moveSeenAtMs <= Self.moveMemoryMs ? moveDirection : 0
    }

    /// Whether a pump is remembered and still fresh at the window ending at `endMs`.
    func pumpActive(at endMs: Int64) -> Bool {
        pumpBase > 0 && endMs - pumpLastMs <= Self.pumpMemoryMs
    }

    /// Folds the window just evaluated into the memory. `fired` holds the pattern kinds that
    /// fired on it: a completed pattern is forgotten, so that it is reported once.
    mutating func advance(with input: DetectorInput, fired: Set<AnomalyKind>) {
        let w = input.window
        let scale = PatternDetector.moveScale(input.baseline)
        let settings = input.settings.patterns
        let end = input.endMs

        if fired.contains(.flashCrash) {
            moveDirection = 0
        } else {
            switch activeMove(at: end) {
            case -1: moveExtreme = min(moveExtreme, w.low)
            case 1: moveExtreme = max(moveExtreme, w.high)
            default:
                moveDirection = 0
                if let leg = PatternDetector.sharpLeg(w, scale: scale, settings: settings) {
                    moveDirection = leg.direction
                    moveReference = w.open
                    moveExtreme = leg.direction < 0 ? w.low : w.high
                    moveScale = scale
                    moveSeenAtMs = end
                }
            }
        }

        if fired.contains(.pumpAndDump) {
            pumpBase = 0
        } else {
            let active = pumpActive(at: end)
            if active { pumpPeak = max(pumpPeak, w.high) }
            if PatternDetector.isPumpWindow(input) {
                if !active {
                    pumpBase = w.open
                    pumpPeak = w.high
                    pumpScale = scale
                }
                pumpLastMs = end
            } else if !active {
                pumpBase = 0
            }
        }
    }
}

/// The pattern rules: shapes of trading that name what happened, not just that something did.
///
/// - `flash_crash`: a sharp move (within one window the price moved from the open to the low, or
///   the high, by at least `moveZ` move scales, see `moveScale`), then a reversion of at least
///   `reversionFraction` of that leg by the close of this or a later window (within 150 s of
///   event time). Covers flash crashes and their mirror, a price spike that fades; a rise that
///   is part of a pump is left to the pump rule. Score: the leg in return scales (`z_move`).
/// - `pump_and_dump`: windows rising with buy pressure (z of the return at the threshold,
///   taker-buy ratio >= 0.6, quote volume >= 2x the baseline median) build a pump from the open
///   of its first window to its highest high; a later window (within 300 s of the last rising
///   one) whose sellers dominate (taker-buy ratio < 0.5) and whose close gives back at least
///   `dumpFraction` of the rise completes it, when the rise reached `moveZ` return scales
///   (measured with the scale from before the pump). Score: the rise in scales (`z_pump`).
/// - `volatility_burst`: the volatility z-score reaches the threshold, the volatility is at least
///   `burstVolatilityRatio` times its baseline median, at least 0.75 of the log range, and at
///   least twice the net move: the price whipsawed instead of travelling (which tells a burst
///   from a crash or a jump). Score: `z_volatility`.
/// - `liquidity_gap`: the longest stretch without trades, at the baseline's median trade rate,
///   should have held at least `gapExpectedTrades` trades, and lasted at least `gapMinMs`.
///   Score: those expected trades (`missed_trades`). A symbol that trades rarely never reaches
///   it, which is the point: silence is only news where trading is normal.
struct PatternDetector: WindowDetector {
    var family: DetectorFamily { .patterns }

    func evaluate(_ input: DetectorInput, into findings: inout [DetectorFinding]) {
        flashCrash(input, into: &findings)
        pumpAndDump(input, into: &findings)
        volatilityBurst(input, into: &findings)
        liquidityGap(input, into: &findings)
    }

    /// The yardstick of moves: the larger of the baseline's robust scale of window returns and
    /// its median realized volatility. A sharp move must outgrow both the usual net move of a
    /// window and the usual distance the price wanders inside one (bid-ask bounce included).
    static func moveScale(_ baseline: BaselineStatistics) -> Double {
        max(baseline.logReturn.scale, baseline.volatility.median)
    }

    /// The sharp leg inside `w`, if any: direction and size in return scales.
    static func sharpLeg(_ w: WindowFeatures, scale: Double, settings: DetectionConfig.PatternSettings) -> (direction: Int8, z: Double)? {
        guard w.count > 0, w.open > 0, w.low > 0 else { return nil }
        let down = naturalLog(w.open / w.low) / scale
        let up = naturalLog(w.high / w.open) / scale
        if down >= settings.moveZ && down >= up { return (-1, down) }
        if up >= settings.moveZ { return (1, up) }
        return nil
    }

    static func isPumpWindow(_ input: DetectorInput) -> Bool {
        let w = input.window
        let b = input.baseline
        return w.count >= Int64(input.settings.volumeSpikeMinTrades)
            && b.logReturn.zScore(w.logReturn) >= input.settings.zScoreThreshold
            && w.takerBuyRatio >= PatternMemory.pumpBuyRatio
            && b.medianQuoteVolume > 0 && w.quoteVolume >= PatternMemory.pumpVolumeRatio * b.medianQuoteVolume
    }

    private func flashCrash(_ input: DetectorInput, into findings: inout [DetectorFinding]) {
        let w = input.window
        let memory = input.patterns
        let settings = input.settings.patterns
        guard w.count > 0 else { return }
        var direction = memory.activeMove(at: input.endMs)
        var reference = memory.moveReference
        var extreme = memory.moveExtreme
        var scale = memory.moveScale
        if direction < 0 {
            extreme = min(extreme, w.low)
        } else if direction > 0 {
            extreme = max(extreme, w.high)
        }
        if direction == 0 || (direction > 0 && memory.pumpActive(at: input.endMs)) {
            let current = Self.moveScale(input.baseline)
            guard let leg = Self.sharpLeg(w, scale: current, settings: settings) else { return }
            direction = leg.direction
            reference = w.open
            extreme = direction < 0 ? w.low : w.high
            scale = current
        }
        // A rise with buy pressure and volume is a pump's: the pump rule judges its reversal.
        if direction > 0 && (memory.pumpActive(at: input.endMs) || Self.isPumpWindow(input)) { return }
        let leg = abs(naturalLog(extreme / reference))
        let reverted = abs(naturalLog(w.close / extreme))
        let z = leg / scale
        findings.append(DetectorFinding(
            kind: .flashCrash, family: family, value: naturalLog(extreme / reference), expected: 0,
            scoreName: "z_move", score: z, threshold: settings.moveZ,
            fired: z >= settings.moveZ && reverted >= settings.reversionFraction * leg))
    }

    private func pumpAndDump(_ input: DetectorInput, into findings: inout [DetectorFinding]) {
        let w = input.window
        let memory = input.patterns
        let settings = input.settings.patterns
        guard memory.pumpActive(at: input.endMs), w.count > 0 else { return }
        let peak = max(memory.pumpPeak, w.high)
        let rise = naturalLog(peak / memory.pumpBase)
        guard rise > 0 else { return }
        let fall = naturalLog(peak / w.close)
        let z = rise / memory.pumpScale
        findings.append(DetectorFinding(
            kind: .pumpAndDump, family: family, value: rise, expected: 0, scoreName: "z_pump", score: z,
            threshold: settings.moveZ,
            fired: z >= settings.moveZ && fall >= settings.dumpFraction * rise && w.takerBuyRatio < 0.5))
    }

    private func volatilityBurst(_ input: DetectorInput, into findings: inout [DetectorFinding]) {
        let w = input.window
        let b = input.baseline
        guard w.count > 0, w.low > 0 else { return }
        let z = b.volatility.zScore(w.volatility)
        let range = naturalLog(w.high / w.low)
        let threshold = input.settings.zScoreThreshold
        findings.append(DetectorFinding(
            kind: .volatilityBurst, family: family, value: w.volatility, expected: b.volatility.median,
            scoreName: "z_volatility", score: z, threshold: threshold,
            fired: z >= threshold && w.volatility >= input.settings.patterns.burstVolatilityRatio * b.volatility.median
                && w.volatility >= PatternMemory.burstPathRatio * range
                && abs(w.logReturn) <= PatternMemory.burstNetMoveRatio * w.volatility))
    }

    private func liquidityGap(_ input: DetectorInput, into findings: inout [DetectorFinding]) {
        let w = input.window
        let b = input.baseline
        let settings = input.settings.patterns
        guard input.windowMs > 0, b.medianTradeCount > 0 else { return }
        let missed = Double(w.longestGapMs) * b.medianTradeCount / Double(input.windowMs)
        findings.append(DetectorFinding(
            kind: .liquidityGap, family: family, value: Double(w.longestGapMs), expected: b.medianLongestGapMs,
            scoreName: "missed_trades", score: missed, threshold: settings.gapExpectedTrades,
            fired: missed >= settings.gapExpectedTrades && w.longestGapMs >= settings.gapMinMs))
    }
}
