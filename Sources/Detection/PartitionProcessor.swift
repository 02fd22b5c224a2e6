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
/// is `(x - median) / scale` with `scale = max(1.4826 * MAD, 0.1 * |median|, 1e-4)`: robust to
/// the spikes it must find, and floored so that a flat baseline gives no infinite z-score
/// (a flat price alerts at threshold x 1 basis point).
/// - `price_shock`: z-score of the log return, either direction; `volatility_shock`: z-score of
///   the realized volatility, upward only; both fire at `|z| >= zScoreThreshold(for:)`.
/// - `volume_spike`: quote volume / baseline median quote volume `>= volumeSpikeRatio(for:)`,
///   with at least `volumeSpikeMinTrades` trades in the window; no ratio when the median is 0.
/// - Policy: `any` reports every firing detector, `zscore` and `volume` their own. `filtered`
///   ("z-score AND Isolation Forest") behaves exactly like `zscore` until the forest exists;
///   `isolation_forest` and `patterns` report nothing yet.
/// - Severity from `|score| / threshold` through `severityCuts` (default 1.5x, 2x, 3x). Quality:
///   high when two or more detectors fire on the window, medium when this one fired at >= 1.5x
///   its threshold, else low.
/// - Cooldown per (symbol, kind) in event time: an anomaly whose window ends less than
///   `cooldownMs` after the window of the last alerted one of its kind is reported with
///   `suppressed = true`.
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
/// no heap allocation. Closing windows allocates (summaries, anomalies).
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
            apply(trade, offset: offset, into: &output)
        case .failure(let error):
            counters.malformed += 1
            output.malformed.append(MalformedRecord(
                partition: partition, offset: offset, reason: error.reason,
                excerpt: String(decoding: payload.prefix(200), as: UTF8.self)))
        }
    }

    private mutating func apply(_ trade: Trade, offset: Int64, into output: inout ProcessorOutput) {
        let t = trade.eventTimeMs
        if t < counters.watermarkMs {
            counters.late += 1
            output.lateEvents.append(LateEvent(
                partition: partition, offset: offset,
                symbol: symbols.id(of: trade.symbol).map(symbols.name) ?? trade.symbol.string,
                eventTimeMs: t, watermarkMs: counters.watermarkMs))
            return
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
        if let known = symbols.id(of: trade.symbol) {
            id = known
        } else {
            id = symbols.intern(trade.symbol)
            states.append(SymbolWindows(
                geometry: geometry, settings: SymbolSettings(config: config, symbol: symbols.name(id)),
                nextWindowStart: max(pane - geometry.panesPerWindow + 1, closedThrough + 1)))
        }
        states[id].add(trade, pane: pane, sequence: offset)
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
        if states[id].baseline.count >= geometry.minHistory {
            let before = output.anomalies.count
            let emitted = WindowEvaluator.evaluate(
                features, baseline: states[id].baseline.statistics(), settings: states[id].settings,
                cooldowns: &states[id].cooldowns,
                context: .init(
                    symbol: name, startMs: startMs, endMs: endMs, detectedAtMs: watermark,
                    partition: partition, offset: offset),
                into: &output.anomalies)
            counters.anomalies += Int64(emitted)
            counters.suppressed += Int64(output.anomalies[before...].reduce(0) { $0 + ($1.suppressed ? 1 : 0) })
        }
        states[id].baseline.append(features)
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
