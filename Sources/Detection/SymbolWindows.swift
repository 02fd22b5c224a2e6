/// One symbol's window state in one partition: open panes, the next window to close, the
/// carried price, the baseline, the Isolation Forest and its history, the pattern memory and
/// the cooldowns.
///
/// Panes live in a fixed ring of `WindowGeometry.ringCapacity` slots indexed by
/// `pane mod capacity`. Enough, because every pane still needed lies in
/// `nextWindowStart ..< nextWindowStart + capacity`: windows are closed up to the watermark
/// `W` before a trade is added, so `nextWindowStart >= floor(W / slide) - k + 1`, and an on-time
/// trade's pane is at most `floor((W + lateness) / slide)`. A slot holding another pane index
/// is stale (that pane's windows are all closed) and reads as empty.
struct SymbolWindows: Equatable, Sendable {
    var panes: [Pane]
    /// Pane index of the start of the next window to close.
    var nextWindowStart: Int64
    /// The latest pane that received a trade (`Int64.min` before any).
    var lastDataPane: Int64 = .min
    /// The close of the last closed window: the price an empty window carries.
    var carriedClose: Double = 0
    var baseline: Baseline
    var cooldowns = Cooldowns()
    var isolation: IsolationModel
    var patterns = PatternMemory()
    /// The id (`t`) of the last trade applied, for `InputLimits.rejectDuplicateTradeIDs`.
    var lastTradeID: Int64?
    /// Resolved from the configuration (not part of a snapshot).
    let settings: SymbolSettings

    init(geometry: WindowGeometry, config: DetectionConfig, symbol: String, nextWindowStart: Int64) {
        panes = Array(repeating: Pane(), count: geometry.ringCapacity)
        self.nextWindowStart = nextWindowStart
        baseline = Baseline(capacity: geometry.baselineWindows)
        isolation = IsolationModel(settings: config.effectiveIsolationForest, symbol: symbol)
        settings = SymbolSettings(config: config, symbol: symbol)
    }

    @inline(__always)
    func slot(of pane: Int64) -> Int {
        Int(truncatingIfNeeded: pane.modulo(Int64(panes.count)))
    }

    /// Adds an on-time trade to its pane. No allocation.
    @inline(__always)
    mutating func add(_ trade: Trade, pane: Int64, sequence: Int64) {
        let i = slot(of: pane)
        if panes[i].index != pane { panes[i] = Pane(index: pane) }
        panes[i].add(
            price: trade.price, quantity: trade.quantity, takerBuy: !trade.buyerIsMaker,
            timeMs: trade.eventTimeMs, sequence: sequence)
        if pane > lastDataPane { lastDataPane = pane }
    }

    /// Combines panes `start ..< start + k` into the window's features and moves on to the
    /// next window. Pane `start` is no longer needed afterwards.
    mutating func closeWindow(start: Int64, geometry: WindowGeometry) -> WindowFeatures {
        var present: [Pane] = []
        if start <= lastDataPane {
            for pane in start..<(start + geometry.panesPerWindow) {
                let i = slot(of: pane)
                if panes[i].index == pane && panes[i].count > 0 { present.append(panes[i]) }
            }
        }
        let startMs = start * geometry.slideMs
        let features = WindowFeatures.combine(
            present, startMs: startMs, endMs: startMs + geometry.windowMs,
            lastPane: start + geometry.panesPerWindow - 1, carriedClose: carriedClose)
        carriedClose = features.close
        nextWindowStart = start + 1
        return features
    }
}

extension Int64 {
    /// Mathematical modulo: in `0 ..< m` for `m > 0`, also for negative `self`.
    @inline(__always)
    func modulo(_ m: Int64) -> Int64 {
        let r = self % m
        return r < 0 ? r + m : r
    }
}
