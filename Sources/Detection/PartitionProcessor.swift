/// Detection for one partition: records in, anomalies, window summaries, late events and
/// malformed records out. The single entry point of the worker and of `vigil detect`.
///
/// ## Determinism
/// The output is a pure function of the sequence of `(offset, payload)` records given to
/// `process`, whatever the batch boundaries, and a processor restored from `snapshot()` goes on
/// exactly as the original would have. The caller feeds each offset once, in log order (the
/// worker skips redeliveries before calling `process`).
///
/// ## Event time, windows, watermark
/// - A trade's time is `T`. Windows are `[start, start + windowMs)` with starts at multiples of
///   `slideMs`, built from panes of `slideMs` (`WindowGeometry`): a trade exactly at a window's
///   end belongs to the next windows, not to that one.
/// - The watermark is the largest `T` seen in the partition minus `allowedLatenessMs`. A window
///   closes, and is evaluated, when the watermark reaches its end (`watermark >= end`), at the
///   arrival of the record that advanced the watermark (its offset goes into the anomalies,
///   and the watermark into `detectedAtMs`).
/// - A trade with `T < watermark` is late: counted, returned as a `LateEvent`, applied to
///   nothing. `T == watermark` is on time.
///
/// ## Which windows are evaluated
/// - The partition's first trade defines its origin: windows that start before the pane (slide)
///   holding the first watermark `T0 - allowedLatenessMs` are never evaluated, since the
///   partition was not observed for their whole span. Every on-time trade lies at or after that
///   pane, so none is left out of every evaluated window.
/// - A symbol's windows start with the earliest window (after the origin) that holds its first
///   trade. From then on every window is closed in turn up to the watermark, empty ones too: no
///   trades is information. An empty window carries the last close as its prices.
/// - Symbols are handled in first-seen order, each closing its due windows in time order.
///
/// ## Detectors, policy, severity, quality, cooldown
/// Each closed window is compared with its symbol's baseline (the last `baselineWindows`
/// closed windows) before joining it, once the baseline holds `minHistory` windows. A z-score
/// is `(x - median) / scale` with a robust, floored scale (`RobustEstimate`): robust to the
/// spikes it must find, and never so small that noise looks like news.
/// - Z-scores (`ZScoreDetector`): `price_shock` (log return, either direction),
///   `volatility_shock` (realized volatility, upward), `trade_count_spike` (`ln(1 + trades)`,
///   upward), at `|z| >= zScoreThreshold(for:)`.
/// - Volume (`VolumeSpikeDetector`): `volume_spike` when the window's quote volume reaches
///   `volumeSpikeRatio(for:)` times the baseline median, or its last pane 1.5 times that
///   ratio of the median's per-pane share.
/// - Isolation Forest (`IsolationForestDetector`, `IsolationModel`): `isolation_outlier` when the
///   symbol's forest, trained on its last unflagged windows and retrained on a schedule, scores
///   the window at or above `isolationForest.threshold`. Seeded from (symbol, generation).
/// - Pattern rules (`PatternDetector`): `flash_crash`, `pump_and_dump`, `volatility_burst`,
///   `liquidity_gap`, some of them across windows through a small per-symbol memory.
/// - Policy, one anomaly per kind and window, severity and quality: see `WindowEvaluator`.
///   The default, `filtered`, reports z-score and volume findings only when the forest agrees,
///   and pattern findings on their own.
/// - Cooldown per (symbol, kind) in event time (`Cooldowns`): a repeat within `cooldownMs` of the
///   last alert of its kind, and not more severe than it, is reported with `suppressed = true`.
///
/// ## Long silences
/// When the watermark jumps far (hours without trades for a symbol, or a time jump in the
/// feed), a symbol does not emit every empty window in between. Windows that still hold trades
/// are always closed. Then, if more than `baselineWindows + windowMs/slideMs` all-empty windows
/// remain, the earlier ones are skipped (counted in `windowsSkipped`), the baseline is reset
/// and only the last `baselineWindows + windowMs/slideMs` are closed. Those refill the baseline,
/// so its state after the jump is what closing every window would have left (the last
/// `baselineWindows` windows, all empty); only the skipped windows' summaries and any anomaly
/// they would have raised are missing.
///
/// ## Cost
/// A trade that closes no window costs one parse, one symbol lookup and one pane update, with
/// no heap allocation. Closing windows allocates (summaries, anomalies, detector findings);
/// every detector runs per closed window only, and a forest is retrained once every
/// `isolationForest.retrainEveryWindows` windows of its symbol.
public struct PartitionProcessor: Sendable {
    public let partition: Int32
    public let config: DetectionConfig
    let geometry: WindowGeometry
    var symbols = SymbolTable()
    /// Window state by symbol id.
    var states: [SymbolWindows] = []
    /// Largest event time seen (`Int64.min` before the first on-time trade).
    var maxEventTimeMs: Int64 = .min
    /// Every window starting at or before this pane is closed for every symbol.
    var closedThrough: Int64 = .min
    var counters = ProcessorStats()

    /// A fresh processor for `partition`. An invalid `config` is clamped, never trapped on
    /// (see `DetectionConfig.validationProblems()`).
    public init(partition: Int32, config: DetectionConfig) {
        self.partition = partition
        self.config = config
        geometry = WindowGeometry(config)
    }

    /// The partition's counters, watermark and next offset.
    public var stats: ProcessorStats {
        var stats = counters
        stats.symbols = Int64(states.count)
        return stats
    }

    /// The current event-time watermark (ms); `Int64.min` before the first on-time trade.
    public var watermarkMs: Int64 { counters.watermarkMs }

    /// Processes one record; appends results to `output`. Never throws: malformed records
    /// become `MalformedRecord`s (counted in stats), late ones `LateEvent`s.
    public mutating func process(offset: Int64, payload: UnsafeRawBufferPointer, into output: inout ProcessorOutput) {
        let parsed = Result { () throws(TradeParseError) -> Trade in try TradeParser.parse(payload) }
        process(offset: offset, parsed: parsed, payload: payload, into: &output)
    }

    /// `process` for a record already parsed (the offline runner parses once to partition).
    mutating func process(
        offset: Int64, parsed: Result<Trade, TradeParseError>, payload: UnsafeRawBufferPointer,
        into output: inout ProcessorOutput
    ) {
        counters.consumed += 1
        counters.nextOffset = offset &+ 1
        switch parsed {
        case .success(let trade):
            apply(trade, offset: offset, payload: payload, into: &output)
        case .failure(let error):
            reject(offset: offset, reason: error.reason, payload: payload, into: &output)
        }
    }

    /// Counts and reports a record that changes nothing: it does not parse, or breaks `InputLimits`.
    private mutating func reject(offset: Int64, reason: String, payload: UnsafeRawBufferPointer, into output: inout ProcessorOutput) {
        counters.malformed += 1
        output.malformed.append(MalformedRecord(
            partition: partition, offset: offset, reason: reason,
            excerpt: String(decoding: payload.prefix(200), as: UTF8.self)))
    }

    private mutating func apply(_ trade: Trade, offset: Int64, payload: UnsafeRawBufferPointer, into output: inout ProcessorOutput) {
        if let limits = config.inputLimits, let problem = limits.problem(with: trade) {
            reject(offset: offset, reason: problem, payload: payload, into: &output)
            return
        }
        let t = trade.eventTimeMs
        if t < counters.watermarkMs {
            counters.late += 1
            output.lateEvents.append(LateEvent(
                partition: partition, offset: offset,
                symbol: symbols.id(of: trade.symbol).map(symbols.name) ?? trade.symbol.string,
                eventTimeMs: t, watermarkMs: counters.watermarkMs))
            return
        }
        let known = symbols.id(of: trade.symbol)
        if let limits = config.inputLimits {
            if let known {
                if limits.rejectDuplicateTradeIDs, let tradeID = trade.tradeID, let last = states[known].lastTradeID, tradeID <= last {
                    reject(offset: offset, reason: "trade id \(tradeID) of \(symbols.name(known)) is not after the last one applied (\(last)): a duplicate or replayed trade", payload: payload, into: &output)
                    return
                }
            } else if states.count >= limits.maxSymbolsPerPartition {
                reject(offset: offset, reason: "new symbol \(trade.symbol.string) refused: partition \(partition) already tracks \(states.count) symbols (detection.max_symbols_per_partition)", payload: payload, into: &output)
                return
            }
        }
        counters.windowed += 1
        if maxEventTimeMs == .min {
            maxEventTimeMs = t
            counters.watermarkMs = t.subtractingSaturated(geometry.latenessMs)
            closedThrough = geometry.pane(of: counters.watermarkMs) - 1
        } else if t > maxEventTimeMs {
            maxEventTimeMs = t
            counters.watermarkMs = t.subtractingSaturated(geometry.latenessMs)
            if counters.watermarkMs >= nextCloseEndMs {
                closeDueWindows(offset: offset, into: &output)
            }
        }

        let pane = geometry.pane(of: t)
        let id: Int
        if let known {  // closing windows adds no symbol: still valid
            id = known
        } else {
            id = symbols.intern(trade.symbol)
            states.append(SymbolWindows(
                geometry: geometry, config: config, symbol: symbols.name(id),
                nextWindowStart: max(pane - geometry.panesPerWindow + 1, closedThrough + 1)))
        }
        states[id].add(trade, pane: pane, sequence: offset)
        if let tradeID = trade.tradeID { states[id].lastTradeID = tradeID }
    }

    /// The watermark at which the next window (start `closedThrough + 1`) closes.
    var nextCloseEndMs: Int64 {
        let (end, overflow) = (closedThrough + 1 + geometry.panesPerWindow).multipliedReportingOverflow(by: geometry.slideMs)
        return overflow ? .max : end
    }

    /// Closes, for every symbol, the windows whose end the watermark has reached.
    private mutating func closeDueWindows(offset: Int64, into output: inout ProcessorOutput) {
        let watermark = counters.watermarkMs
        let target = geometry.pane(of: watermark) - geometry.panesPerWindow
        guard target > closedThrough else { return }
        let cap = geometry.catchUpCap
        for id in states.indices {
            var start = states[id].nextWindowStart
            while start <= target {
                if start > states[id].lastDataPane && target - start + 1 > cap {
                    let resume = target - cap + 1
                    counters.windowsSkipped += resume - start
                    states[id].baseline.reset()
                    states[id].patterns = PatternMemory()
                    start = resume
                }
                closeWindow(symbol: id, start: start, watermark: watermark, offset: offset, into: &output)
                start += 1
            }
        }
        closedThrough = target
    }

    private mutating func closeWindow(
        symbol id: Int, start: Int64, watermark: Int64, offset: Int64, into output: inout ProcessorOutput
    ) {
        let features = states[id].closeWindow(start: start, geometry: geometry)
        let name = symbols.name(id)
        let startMs = start * geometry.slideMs
        let endMs = startMs + geometry.windowMs
        output.windows.append(features.summary(symbol: name, startMs: startMs, endMs: endMs))
        counters.windowsClosed += 1
        var flagged = false
        if states[id].baseline.count >= geometry.minHistory {
            let before = output.anomalies.count
            let input = DetectorInput(
                window: features, baseline: states[id].baseline.statistics(), settings: states[id].settings,
                windowMs: geometry.windowMs, panesPerWindow: geometry.panesPerWindow,
                isolationScore: states[id].isolation.score(features, windowMs: geometry.windowMs),
                patterns: states[id].patterns, endMs: endMs)
            let outcome = WindowEvaluator.evaluate(
                input, cooldowns: &states[id].cooldowns,
                context: .init(
                    symbol: name, startMs: startMs, endMs: endMs, detectedAtMs: watermark,
                    partition: partition, offset: offset),
                into: &output.anomalies)
            states[id].patterns.advance(with: input, fired: outcome.firedPatterns)
            flagged = outcome.flagged
            counters.anomalies += Int64(output.anomalies.count - before)
            counters.suppressed += Int64(output.anomalies[before...].reduce(0) { $0 + ($1.suppressed ? 1 : 0) })
        }
        states[id].baseline.append(features)
        // The forest learns what normal looks like: windows another detector flagged stay out
        // of its history, so that one shock does not teach it to shrug at the next.
        if !flagged { states[id].isolation.append(features, windowMs: geometry.windowMs) }
    }
}

extension Int64 {
    /// `self - other`, clamped to `Int64.min` instead of overflowing.
    @inline(__always)
    func subtractingSaturated(_ other: Int64) -> Int64 {
        let (result, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other > 0 ? .min : .max) : result
    }
}
