#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The trades of one simulated symbol, in event-time order.
///
/// - Arrivals: a Poisson process whose rate switches between a calm and a busy regime
///   (Markov-modulated, exponential dwell times); during an anomaly phase the phase's multiplier
///   of the normal rate applies instead. Between rate changes the process is memoryless, so the
///   exact next arrival is drawn by restarting the exponential clock at each change point.
/// - Price: geometric Brownian motion of the mid price in event time, plus the log offset of the
///   anomaly in progress, plus mean-reverting whipsaw noise during volatility bursts. Buyers take
///   the ask and sellers the bid, one tick apart, so trades bounce between them as on an exchange.
/// - Sizes: log-normal around the symbol's median, rounded to the quantity step (at least one step).
/// - Taker side: repeats the previous side with probability `sidePersistence`, otherwise is a buy
///   with the phase's buy probability (1/2 normally), so the long-run share of buys is that probability.
///
/// Times are ms from the simulation start, as `Double`; the trade time `T` is the floor.
struct SymbolStream: Sendable {
    // Regimes: busy a quarter of the time, so the average multiplier is 0.75 × 0.6 + 0.25 × 2.2 = 1.
    static let calmMultiplier = 0.6
    static let busyMultiplier = 2.2
    static let calmMeanMs = 24_000.0
    static let busyMeanMs = 8_000.0
    static let sidePersistence = 0.6
    /// Whipsaws revert with a 3 s time constant.
    static let whipsawReversionPerMs = 1.0 / 3_000

    let encoder: TradeLineEncoder
    private let startMs: Int64
    private let endMs: Double
    private let baseRatePerMs: Double
    private let sigmaPerSqrtMs: Double
    private let priceScale: Double
    private let quantityScale: Double
    private let medianQuantity: Double
    private let quantitySigma: Double

    private var draws: RandomDraws

    // Arrivals.
    /// Time of the next trade; `.infinity` when the stream has ended.
    private(set) var nextTradeMs: Double = 0
    private var busy: Bool
    private var regimeEndMs: Double

    // Price.
    /// Log of the mid price without the anomaly in progress (GBM plus the lasting part of past anomalies).
    private var logPrice: Double
    private var lastPriceMs: Double = 0
    private var whipsaw: Double = 0
    private var lastBuy: Bool
    private var nextTradeID: UInt64

    // Anomalies, in start order.
    private let anomalies: [[AnomalyPhase]]
    private var anomalyIndex = 0
    /// Index of the phase in progress in `anomalies[anomalyIndex]`, or -1 before it starts.
    private var phaseIndex = -1

    init(profile: SymbolProfile, stream: UInt64, config: SimulatorConfig, tradesPerSecond: Double, anomalies: [[AnomalyPhase]]) {
        encoder = TradeLineEncoder(symbol: profile.symbol, priceDecimals: profile.priceDecimals,
                                   quantityDecimals: profile.quantityDecimals)
        startMs = config.startMs
        endMs = Double(config.durationMs)
        baseRatePerMs = tradesPerSecond / 1_000
        // Annualized volatility over a 365-day year of milliseconds (crypto never closes).
        sigmaPerSqrtMs = profile.annualVolatility / (365.0 * 86_400_000).squareRoot()
        priceScale = SimulatorConfig.power10(profile.priceDecimals)
        quantityScale = SimulatorConfig.power10(profile.quantityDecimals)
        medianQuantity = profile.medianQuantity
        quantitySigma = profile.quantitySigma
        self.anomalies = anomalies

        draws = RandomDraws(seed: config.seed, stream: stream)
        // Start in the regime's stationary distribution: busy a quarter of the time.
        busy = draws.chance(Self.busyMeanMs / (Self.calmMeanMs + Self.busyMeanMs))
        regimeEndMs = draws.exponential() * (busy ? Self.busyMeanMs : Self.calmMeanMs)
        logPrice = log(profile.basePrice)
        lastBuy = draws.chance(0.5)
        nextTradeID = 100_000_000 + UInt64(draws.index(below: 900_000_000))
        scheduleNextTrade(after: 0)
    }

    /// Writes the trade at `nextTradeMs` into `line`, draws the next arrival, and returns the
    /// trade time and the key range. Call only while `nextTradeMs` is finite.
    mutating func emit(into line: inout [UInt8]) -> (timeMs: Int64, keyRange: Range<Int>) {
        let now = nextTradeMs
        let phase = currentPhase

        let elapsed = now - lastPriceMs
        lastPriceMs = now
        if elapsed > 0 {
            logPrice += sigmaPerSqrtMs * elapsed.squareRoot() * draws.normal() - 0.5 * sigmaPerSqrtMs * sigmaPerSqrtMs * elapsed
        }
        let whipsawMultiplier = phase?.whipsawMultiplier ?? 0
        if whipsawMultiplier > 0 || whipsaw != 0 {
            // Exact Ornstein-Uhlenbeck step over `elapsed`.
            let decay = exp(-Self.whipsawReversionPerMs * elapsed)
            whipsaw *= decay
            if whipsawMultiplier > 0 {
                let spread = ((1 - decay * decay) / (2 * Self.whipsawReversionPerMs)).squareRoot()
                whipsaw += whipsawMultiplier * sigmaPerSqrtMs * spread * draws.normal()
            } else if abs(whipsaw) < 1e-9 {
                whipsaw = 0
            }
        }
        let mid = exp(logPrice + (phase?.offset(at: now) ?? 0) + whipsaw) * priceScale

        let buy = draws.chance(Self.sidePersistence) ? lastBuy : draws.chance(phase?.buyProbability ?? 0.5)
        lastBuy = buy
        let bid = max(mid.rounded(.down), 1)
        let priceUnits = UInt64(buy ? bid + 1 : bid)
        let size = medianQuantity * (phase?.sizeMultiplier ?? 1) * exp(quantitySigma * draws.normal())
        let quantityUnits = UInt64(max((size * quantityScale).rounded(), 1))

        let tradeID = nextTradeID
        nextTradeID += 1
        let timeMs = startMs + Int64(now)
        let keyRange = encoder.write(into: &line, tradeTimeMs: timeMs, tradeID: tradeID, priceUnits: priceUnits,
                                     quantityUnits: quantityUnits, buyerIsMaker: !buy)
        scheduleNextTrade(after: now)
        return (timeMs, keyRange)
    }

    /// The anomaly phase in progress, if any (`scheduleNextTrade` keeps it current up to `nextTradeMs`).
    private var currentPhase: AnomalyPhase? {
        guard phaseIndex >= 0 else { return nil }
        return anomalies[anomalyIndex][phaseIndex]
    }

    /// The next time the arrival rate changes because of an anomaly, or `.infinity`.
    private var nextAnomalyBoundary: Double {
        guard anomalyIndex < anomalies.count else { return .infinity }
        let phases = anomalies[anomalyIndex]
        return phaseIndex < 0 ? phases[0].startMs : phases[phaseIndex].endMs
    }

    /// Draws the first arrival after `time`, crossing regime and anomaly boundaries as needed.
    private mutating func scheduleNextTrade(after time: Double) {
        var now = time
        while true {
            let anomalyBoundary = nextAnomalyBoundary
            let boundary = min(regimeEndMs, anomalyBoundary, endMs)
            // An anomaly sets the pace by itself: its multiplier replaces the regime's, so that
            // its volume stands out by the same factor whichever regime it fell in.
            let rate = baseRatePerMs * (currentPhase?.rateMultiplier ?? (busy ? Self.busyMultiplier : Self.calmMultiplier))
            if rate > 0 {
                let candidate = now + draws.exponential() / rate
                if candidate < boundary {
                    nextTradeMs = candidate
                    return
                }
            }
            guard boundary < endMs else {
                nextTradeMs = .infinity
                return
            }
            now = boundary
            if regimeEndMs <= now {
                busy.toggle()
                regimeEndMs = now + draws.exponential() * (busy ? Self.busyMeanMs : Self.calmMeanMs)
            }
            if anomalyBoundary <= now {
                advanceAnomalyPhase()
            }
        }
    }

    private mutating func advanceAnomalyPhase() {
        let phases = anomalies[anomalyIndex]
        phaseIndex += 1
        if phaseIndex == phases.count {
            // The anomaly is over; what it did to the price stays (a shock's new level, a crash's unrecovered part).
            logPrice += phases[phases.count - 1].targetOffset
            anomalyIndex += 1
            phaseIndex = -1
        }
    }
}
