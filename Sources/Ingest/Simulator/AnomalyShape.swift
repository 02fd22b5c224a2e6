import Detection

/// One stretch of an injected anomaly during which the symbol trades differently.
///
/// Times are ms from the simulation start. The log-price offset moves linearly from the
/// previous phase's `targetOffset` (0 before the first phase) to this one's; the other
/// fields multiply or replace the symbol's normal behaviour while the phase lasts.
struct AnomalyPhase: Sendable, Equatable {
    var startMs: Double
    var endMs: Double
    /// Offset added to the log price at `startMs` (the previous phase's target).
    var startOffset: Double
    /// Offset added to the log price at `endMs`.
    var targetOffset: Double
    /// Multiplies the arrival rate; 0 stops trading (a liquidity gap).
    var rateMultiplier: Double
    /// Multiplies the median trade size.
    var sizeMultiplier: Double
    /// Probability that a fresh (non-persistent) taker side is a buy.
    var buyProbability: Double
    /// Strength of mean-reverting whipsaw noise, in multiples of the symbol's normal volatility; 0 for none.
    var whipsawMultiplier: Double

    func offset(at timeMs: Double) -> Double {
        let span = endMs - startMs
        guard span > 0 else { return targetOffset }
        let progress = min(max((timeMs - startMs) / span, 0), 1)
        return startOffset + (targetOffset - startOffset) * progress
    }
}

/// The phases of one anomaly kind, drawn at random within ranges chosen so that each kind is
/// plain against a 12-window baseline (z thresholds around 3.5, volume ratio 3) while staying
/// within what real markets do.
struct AnomalyShape: Sendable {
    /// Phases relative to the anomaly's start (`startMs` of the first is 0).
    var phases: [AnomalyPhase]
    var durationMs: Int64 { Int64(phases.last?.endMs ?? 0) }

    /// Trades the anomaly adds (or, below zero, removes), in ms of the symbol's normal rate.
    var extraTradingMs: Double {
        phases.reduce(0) { $0 + ($1.rateMultiplier - 1) * ($1.endMs - $1.startMs) }
    }

    /// Draws the shape of one `kind` anomaly. Durations are whole milliseconds.
    static func draw(_ kind: AnomalyKind, using draws: inout RandomDraws) -> AnomalyShape {
        var builder = Builder()
        switch kind {
        case .priceShock:
            // A sudden repricing of 3-6 % in 6-15 s that stays: z of the window return is in the dozens.
            let up = draws.chance(0.5)
            let move = draws.uniform(0.03, 0.06)
            builder.add(ms: draws.uniform(6_000, 15_000), to: up ? move : -move, rate: 2.5, size: 1.5, buy: up ? 0.8 : 0.2)
        case .volumeSpike:
            // 6x the trades at 2x the size for 70-120 s: a window inside it trades about 12x its
            // baseline volume (over 7x even in the calm regime), price flat.
            builder.add(ms: draws.uniform(70_000, 120_000), to: 0, rate: 6, size: 2, buy: 0.5)
        case .flashCrash:
            // A 6-10 % drop in 8-20 s on heavy selling, then a 50-80 % recovery over 40-90 s.
            let drop = draws.uniform(0.06, 0.10)
            let recovered = draws.uniform(0.5, 0.8)
            builder.add(ms: draws.uniform(8_000, 20_000), to: -drop, rate: 4, size: 2, buy: 0.15)
            builder.add(ms: draws.uniform(40_000, 90_000), to: -drop * (1 - recovered), rate: 2.5, size: 1.3, buy: 0.7)
        case .pumpAndDump:
            // An 8-15 % climb over 2-4 min on 3.5x trades at 1.6x the size with buy pressure, then a
            // dump back to about where it started in 15-40 s.
            let rise = draws.uniform(0.08, 0.15)
            builder.add(ms: draws.uniform(120_000, 240_000), to: rise, rate: 3.5, size: 1.6, buy: 0.8)
            builder.add(ms: draws.uniform(15_000, 40_000), to: rise * draws.uniform(-0.1, 0.1), rate: 4, size: 2, buy: 0.15)
        case .volatilityBurst:
            // 60-120 s of mean-reverting whipsaws 10-16x the normal volatility; little net move.
            builder.add(ms: draws.uniform(60_000, 120_000), to: 0, rate: 1.8, size: 1.2, buy: 0.5,
                        whipsaw: draws.uniform(10, 16))
        case .liquidityGap:
            // No trade at all for 90-150 s.
            builder.add(ms: draws.uniform(90_000, 150_000), to: 0, rate: 0, size: 1, buy: 0.5)
        default:
            // SimulatorConfig.validate() admits only the injectable kinds.
            preconditionFailure("\(kind.rawValue) is not an injectable anomaly kind")
        }
        return AnomalyShape(phases: builder.phases)
    }

    /// The same phases shifted to start at `startMs` (ms from the simulation start).
    func placed(at startMs: Int64) -> [AnomalyPhase] {
        let shift = Double(startMs)
        return phases.map { phase in
            var moved = phase
            moved.startMs += shift
            moved.endMs += shift
            return moved
        }
    }

    private struct Builder {
        var phases: [AnomalyPhase] = []

        mutating func add(ms: Double, to target: Double, rate: Double, size: Double, buy: Double, whipsaw: Double = 0) {
            let start = phases.last?.endMs ?? 0
            phases.append(AnomalyPhase(
                startMs: start, endMs: start + ms.rounded(.down), startOffset: phases.last?.targetOffset ?? 0,
                targetOffset: target, rateMultiplier: rate, sizeMultiplier: size, buyProbability: buy,
                whipsawMultiplier: whipsaw))
        }
    }
}
