/// The aggregate of one symbol's trades in one pane (`slideMs` of event time).
///
/// Each trade updates exactly one pane, in O(1) and without allocating; a window is the
/// combination of `panesPerWindow` consecutive panes (see `WindowFeatures.combine`).
/// "Arrival order" is the order of the partition log, carried as the record offset
/// (`sequence`), so that a window's open and close are its first and last trades as they
/// arrived even when trades arrive out of event-time order within the allowed lateness.
struct Pane: Equatable, Sendable {
    /// The pane index, or `Int64.min` for an unused ring slot.
    var index: Int64 = .min
    var count: Int64 = 0
    var baseVolume = 0.0
    var quoteVolume = 0.0
    /// Base volume of trades whose buyer was the taker (`m == false`).
    var takerBuyVolume = 0.0
    var open = 0.0
    var high = 0.0
    var low = 0.0
    var close = 0.0
    /// Offsets of the first and last trade that arrived in the pane.
    var firstSequence: Int64 = 0
    var lastSequence: Int64 = 0
    /// Sum of squared log returns between consecutive (by arrival) trades of this pane.
    var sumSquaredReturns = 0.0
    var largestTrade = 0.0
    /// Earliest and latest event time in the pane.
    var minTimeMs: Int64 = 0
    var maxTimeMs: Int64 = 0
    /// Longest gap between trades inside `minTimeMs...maxTimeMs`. Exact when trades arrive in
    /// event-time order; a trade arriving inside the span it extends no further does not
    /// split the gap it falls in (the gap may be overstated, never understated by more).
    var longestGapMs: Int64 = 0
    /// Rush orders: runs of two or more consecutive arrivals in the same millisecond on the same
    /// taker side (one aggressive order sweeping several resting ones). `rushClusters` counts the
    /// runs, `rushVolume` adds their base volume. A run is tracked by arrival order, so a trade
    /// of another millisecond or side arriving in between ends it.
    var rushClusters: Int64 = 0
    var rushVolume = 0.0
    /// Time, side and length of the run the last arrival belongs to, and its first fill's size
    /// (added to `rushVolume` when a second fill makes the run a rush).
    var runTimeMs: Int64 = 0
    var runTakerBuy = false
    var runFills: Int64 = 0
    var runFirstQuantity = 0.0

    init() {}

    init(index: Int64) {
        self.index = index
    }

    @inline(__always)
    mutating func add(price: Double, quantity: Double, takerBuy: Bool, timeMs: Int64, sequence: Int64) {
        if count == 0 {
            open = price
            high = price
            low = price
            firstSequence = sequence
            minTimeMs = timeMs
            maxTimeMs = timeMs
        } else {
            if price != close {
                let r = naturalLog(price / close)
                sumSquaredReturns += r * r
            }
            if price > high { high = price }
            if price < low { low = price }
            if timeMs >= maxTimeMs {
                longestGapMs = max(longestGapMs, timeMs - maxTimeMs)
                maxTimeMs = timeMs
            } else if timeMs < minTimeMs {
                longestGapMs = max(longestGapMs, minTimeMs - timeMs)
                minTimeMs = timeMs
            }
        }
        if count > 0 && timeMs == runTimeMs && takerBuy == runTakerBuy {
            runFills += 1
            if runFills == 2 {
                rushClusters += 1
                rushVolume += runFirstQuantity
            }
            rushVolume += quantity
        } else {
            runTimeMs = timeMs
            runTakerBuy = takerBuy
            runFills = 1
            runFirstQuantity = quantity
        }
        close = price
        lastSequence = sequence
        count += 1
        baseVolume += quantity
        quoteVolume += price * quantity
        if takerBuy { takerBuyVolume += quantity }
        if quantity > largestTrade { largestTrade = quantity }
    }
}

/// The features of one closed window of one symbol: what `WindowSummary` carries, what the
/// baseline keeps and what every detector reads.
struct WindowFeatures: Equatable, Sendable {
    var count: Int64
    var baseVolume: Double
    var quoteVolume: Double
    /// `quoteVolume / baseVolume`; the close when the base volume is 0.
    var vwap: Double
    var open: Double
    var high: Double
    var low: Double
    var close: Double
    /// `ln(close / open)`; 0 for an empty window.
    var logReturn: Double
    /// `sqrt` of the sum of squared log returns between consecutive trades (by arrival).
    var volatility: Double
    /// Share of base volume bought by takers; 0.5 (no imbalance) when the base volume is 0.
    var takerBuyRatio: Double
    var largestTrade: Double
    /// Longest stretch without a trade, counting from the window start to the first trade and
    /// from the last trade to the window end: `windowMs` for an empty window.
    var longestGapMs: Int64
    /// Rush orders (see `Pane.rushClusters`): runs of same-millisecond, same-side fills.
    var rushClusters: Int64 = 0
    /// Share of base volume traded in rush runs; 0 when the base volume is 0.
    var rushVolumeShare: Double = 0
    /// Quote volume of the window's last pane (its newest `slideMs`): a burst that began just
    /// before the window closed shows here at full strength, diluted in `quoteVolume`.
    var recentQuoteVolume: Double = 0

    /// An empty window: no trades, the last known price carried as open/high/low/close/vwap.
    static func empty(carriedClose: Double, windowMs: Int64) -> WindowFeatures {
        WindowFeatures(
            count: 0, baseVolume: 0, quoteVolume: 0, vwap: carriedClose, open: carriedClose,
            high: carriedClose, low: carriedClose, close: carriedClose, logReturn: 0, volatility: 0,
            takerBuyRatio: 0.5, largestTrade: 0, longestGapMs: windowMs, rushClusters: 0, rushVolumeShare: 0,
            recentQuoteVolume: 0)
    }

    /// Combines the non-empty panes of a window, given in pane (event-time) order.
    ///
    /// Open and close come from the panes holding the first and the last arrival. Volatility
    /// adds each pane's own sum to the squared log returns across pane joints, taking panes in
    /// order of first arrival: exact when trades arrive in event-time order (the recordings and
    /// live feeds do), a close approximation otherwise, and deterministic either way.
    /// `lastPane` is the index of the window's last pane (for `recentQuoteVolume`).
    static func combine(_ panes: [Pane], startMs: Int64, endMs: Int64, lastPane: Int64, carriedClose: Double) -> WindowFeatures {
        guard let first = panes.first else {
            return .empty(carriedClose: carriedClose, windowMs: endMs - startMs)
        }
        var count: Int64 = 0
        var base = 0.0
        var quote = 0.0
        var takerBuy = 0.0
        var high = first.high
        var low = first.low
        var largest = 0.0
        var sumSquares = 0.0
        var opening = first
        var closing = first
        var longestGap: Int64 = 0
        var rushClusters: Int64 = 0
        var rushVolume = 0.0
        var recentQuote = 0.0
        var cursor = startMs
        for pane in panes {
            count += pane.count
            base += pane.baseVolume
            quote += pane.quoteVolume
            takerBuy += pane.takerBuyVolume
            high = max(high, pane.high)
            low = min(low, pane.low)
            largest = max(largest, pane.largestTrade)
            sumSquares += pane.sumSquaredReturns
            rushClusters += pane.rushClusters
            rushVolume += pane.rushVolume
            if pane.index == lastPane { recentQuote += pane.quoteVolume }
            if pane.firstSequence < opening.firstSequence { opening = pane }
            if pane.lastSequence > closing.lastSequence { closing = pane }
            longestGap = max(longestGap, pane.minTimeMs - cursor, pane.longestGapMs)
            cursor = pane.maxTimeMs
        }
        longestGap = max(longestGap, endMs - cursor)
        if panes.count > 1 {
            let byArrival = panes.sorted { $0.firstSequence < $1.firstSequence }
            for i in 1..<byArrival.count {
                let r = naturalLog(byArrival[i].open / byArrival[i - 1].close)
                sumSquares += r * r
            }
        }
        let open = opening.open
        let close = closing.close
        return WindowFeatures(
            count: count, baseVolume: base, quoteVolume: quote,
            vwap: base > 0 ? quote / base : close,
            open: open, high: high, low: low, close: close,
            logReturn: naturalLog(close / open),
            volatility: sumSquares.squareRoot(),
            takerBuyRatio: base > 0 ? takerBuy / base : 0.5,
            largestTrade: largest, longestGapMs: longestGap, rushClusters: rushClusters,
            rushVolumeShare: base > 0 ? min(1, rushVolume / base) : 0, recentQuoteVolume: recentQuote)
    }

    func summary(symbol: String, startMs: Int64, endMs: Int64) -> WindowSummary {
        WindowSummary(
            symbol: symbol, startMs: startMs, endMs: endMs, count: count, baseVolume: baseVolume,
            quoteVolume: quoteVolume, vwap: vwap, open: open, high: high, low: low, close: close,
            logReturn: logReturn, volatility: volatility, takerBuyRatio: takerBuyRatio,
            largestTrade: largestTrade, longestGapMs: longestGapMs, rushClusters: rushClusters,
            rushVolumeShare: rushVolumeShare)
    }
}
