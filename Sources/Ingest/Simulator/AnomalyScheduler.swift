import Detection

/// One injected anomaly: its public label and the phases the symbol's stream plays.
struct ScheduledAnomaly: Sendable {
    var label: AnomalyLabel
    var symbolIndex: Int
    /// Phases in ms from the simulation start.
    var phases: [AnomalyPhase]
    /// Trades the anomaly adds (or removes), in ms of the symbol's normal rate.
    var extraTradingMs: Double
}

/// Places the configured anomalies in time and on symbols (see `SimulatorConfig.AnomalySchedule`).
///
/// Pure and deterministic: it draws from its own generator stream, so the schedule does not
/// depend on the trades generated.
enum AnomalyScheduler {
    /// A liquidity gap is only meaningful on a symbol that normally trades often: at this average
    /// rate even the calm regime leaves a natural 90 s gap a chance below 1e-11.
    static let minimumGapTradesPerSecond = 0.5
    /// The generator stream of the scheduler; symbol streams use their index.
    static let stream = UInt64.max

    static func plan(_ config: SimulatorConfig, tradesPerSecond symbolRates: [Double]) throws(IngestError) -> [ScheduledAnomaly] {
        let schedule = config.anomalies
        guard schedule.count > 0 else { return [] }
        let duration = config.durationMs
        let gapCapable = symbolRates.map { $0 >= minimumGapTradesPerSecond }
        if schedule.kinds.contains(.liquidityGap), !gapCapable.contains(true) {
            throw IngestError(.invalidConfig, """
                liquidity_gap needs a symbol averaging at least \(minimumGapTradesPerSecond) trades/s, but the busiest \
                has \(symbolRates.max() ?? 0); raise the trade rate (now \(config.tradesPerSecond)/s) or leave liquidity_gap out
                """)
        }
        let lastSlot = Int64(schedule.count - 1)
        if schedule.warmupMs > duration || lastSlot > (duration - schedule.warmupMs) / schedule.everyMs {
            throw doesNotFit(config, reason: "the last of them would start after the simulation ends")
        }

        var draws = RandomDraws(seed: config.seed, stream: stream)
        var kinds: [AnomalyKind] = []
        for _ in 0..<schedule.perKind { kinds += schedule.kinds }
        draws.shuffle(&kinds)

        var quietFrom = [Int64](repeating: .min, count: symbolRates.count)
        var planned: [ScheduledAnomaly] = []
        for (slot, kind) in kinds.enumerated() {
            let shape = AnomalyShape.draw(kind, using: &draws)
            let slotStart = schedule.warmupMs + Int64(slot) * schedule.everyMs
            let candidate = slotStart + Int64(draws.uniform(0, Double(schedule.everyMs) / 3))
            let allowed = symbolRates.indices.filter { kind != .liquidityGap || gapCapable[$0] }
            let ready = allowed.filter { quietFrom[$0] <= candidate }
            let symbol: Int
            let start: Int64
            if ready.isEmpty {
                // Wait for the symbol that becomes quiet first (lowest index on ties).
                symbol = allowed.min { quietFrom[$0] < quietFrom[$1] }!
                start = quietFrom[symbol]
            } else {
                symbol = ready[draws.index(below: ready.count)]
                start = candidate
            }
            let end = start + shape.durationMs
            guard end <= duration else {
                throw doesNotFit(config, reason: "\(kind.rawValue) (#\(slot + 1)) would end at \(end / 1000) s")
            }
            quietFrom[symbol] = end + schedule.quietMs
            planned.append(ScheduledAnomaly(
                label: AnomalyLabel(symbol: config.symbols[symbol].symbol, kind: kind,
                                    startMs: config.startMs + start, endMs: config.startMs + end),
                symbolIndex: symbol, phases: shape.placed(at: start), extraTradingMs: shape.extraTradingMs))
        }
        return planned.sorted { ($0.label.startMs, $0.symbolIndex) < ($1.label.startMs, $1.symbolIndex) }
    }

    private static func doesNotFit(_ config: SimulatorConfig, reason: String) -> IngestError {
        let schedule = config.anomalies
        return IngestError(.scheduleDoesNotFit, """
            \(schedule.count) anomalies (\(schedule.perKind) of each of \(schedule.kinds.count) kinds) one every \
            \(schedule.everyMs / 1000) s after a \(schedule.warmupMs / 1000) s warm-up do not fit in \
            \(config.durationMs / 1000) s: \(reason); lengthen the duration, inject fewer per kind, or space them closer
            """)
    }
}
