import Detection

/// Everything that determines a simulated market. Two simulators built from equal
/// configurations produce byte-identical trades and labels.
public struct SimulatorConfig: Sendable, Equatable {
    /// Seed of every random choice: prices, arrivals, sizes, sides, and the anomaly schedule.
    public var seed: UInt64 = 1
    /// The symbols traded, each with its own price process; their `activity` splits the overall rate.
    public var symbols: [SymbolProfile] = SymbolProfile.defaults
    /// Average trades per second of event time over all symbols and the whole run. Arrivals are
    /// bursty (a calm and a busy regime per symbol), so any one minute may be well off this; an
    /// hour is within a few percent. Anomalies that add trades (volume spikes, pumps) or remove
    /// them (liquidity gaps) are compensated by a slightly lower or higher normal rate of their symbol.
    public var tradesPerSecond: Double = 50
    /// Event time of the simulation start, ms since the Unix epoch (default 2024-08-09T00:00:00Z).
    public var startMs: Int64 = 1_723_161_600_000
    /// Length of the simulation in event time (ms); trades have `T` in `[startMs, startMs + durationMs)`.
    public var durationMs: Int64 = 3_600_000
    /// Which anomalies to inject, how many and how far apart.
    public var anomalies = AnomalySchedule()

    public init() {}

    /// Event time at which the simulation ends (exclusive).
    public var endMs: Int64 { startMs + durationMs }

    /// The anomaly kinds the simulator knows how to inject, in a fixed order.
    public static let injectableKinds: [AnomalyKind] = [
        .priceShock, .volumeSpike, .flashCrash, .pumpAndDump, .volatilityBurst, .liquidityGap,
    ]

    /// How injected anomalies are scheduled.
    ///
    /// The `perKind × kinds.count` anomalies are shuffled (from the seed) and placed one per slot:
    /// slot `k` begins at `startMs + warmupMs + k × everyMs`, and its anomaly starts at a random
    /// point of the slot's first third on a random symbol that has been quiet for `quietMs` since
    /// its previous anomaly ended (when none has, the anomaly waits for the first one that has).
    /// Anomalies never overlap on a symbol; on different symbols they may.
    public struct AnomalySchedule: Sendable, Equatable {
        /// How many anomalies of each kind to inject (0 gives a clean market).
        public var perKind: Int = 1
        /// The kinds to inject; each must be one of `SimulatorConfig.injectableKinds`.
        public var kinds: [AnomalyKind] = SimulatorConfig.injectableKinds
        /// Spacing of anomaly slots (ms).
        public var everyMs: Int64 = 180_000
        /// Event time before the first anomaly, so detectors can build a baseline (default 6 min:
        /// enough for 6 windows of history and a 12-window baseline at a 20 s slide).
        public var warmupMs: Int64 = 360_000
        /// Minimum time between the end of one anomaly and the start of the next on the same symbol,
        /// so that the symbol's baseline is clean again (default 6 min).
        public var quietMs: Int64 = 360_000

        public init() {}

        /// Total number of anomalies this schedule asks for.
        public var count: Int { perKind * kinds.count }
    }

    /// Checks every setting, throwing an `IngestError` with code `.invalidConfig` that names the
    /// first bad one and the accepted range.
    public func validate() throws(IngestError) {
        func fail(_ message: String) -> IngestError { IngestError(.invalidConfig, message) }
        guard !symbols.isEmpty else { throw fail("symbols: the list is empty; give at least one symbol") }
        var seen = Set<String>()
        for profile in symbols {
            let name = profile.symbol
            guard !name.isEmpty, name.utf8.count <= 32,
                  name.utf8.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) })
            else { throw fail("symbol \"\(name)\": use 1-32 upper-case letters and digits, e.g. BTCUSDT") }
            guard seen.insert(name).inserted else { throw fail("symbol \(name) is listed twice") }
            guard (0...8).contains(profile.priceDecimals), (0...8).contains(profile.quantityDecimals) else {
                throw fail("\(name): priceDecimals and quantityDecimals must be in 0...8")
            }
            guard profile.basePrice.isFinite, profile.basePrice > 0,
                  profile.basePrice * Self.power10(profile.priceDecimals) < 1e14
            else { throw fail("\(name): basePrice must be positive and below 1e14 ticks") }
            guard profile.basePrice * Self.power10(profile.priceDecimals) >= 100 else {
                throw fail("\(name): basePrice \(profile.basePrice) is under 100 ticks of 10^-\(profile.priceDecimals); add price decimals")
            }
            guard profile.annualVolatility.isFinite, (0...5).contains(profile.annualVolatility) else {
                throw fail("\(name): annualVolatility must be in 0...5 (0.55 means 55 % a year)")
            }
            guard profile.activity.isFinite, profile.activity > 0 else {
                throw fail("\(name): activity must be positive (it is a relative weight)")
            }
            guard profile.medianQuantity.isFinite, profile.medianQuantity > 0,
                  profile.medianQuantity * Self.power10(profile.quantityDecimals) < 1e12
            else { throw fail("\(name): medianQuantity must be positive and below 1e12 steps") }
            guard profile.quantitySigma.isFinite, (0...3).contains(profile.quantitySigma) else {
                throw fail("\(name): quantitySigma must be in 0...3")
            }
        }
        guard tradesPerSecond.isFinite, tradesPerSecond > 0, tradesPerSecond <= 10_000_000 else {
            throw fail("tradesPerSecond must be in (0, 10000000], got \(tradesPerSecond)")
        }
        guard startMs >= 0 else { throw fail("startMs must not be negative, got \(startMs)") }
        guard durationMs > 0, durationMs <= 366 * 86_400_000 else {
            throw fail("durationMs must be in 1...\(366 * 86_400_000) (a year), got \(durationMs)")
        }
        guard anomalies.perKind >= 0 else { throw fail("anomalies per kind must not be negative") }
        for kind in anomalies.kinds where !Self.injectableKinds.contains(kind) {
            throw fail("anomaly kind \(kind.rawValue) cannot be injected; use one of \(Self.injectableKinds.map(\.rawValue).joined(separator: ", "))")
        }
        guard Set(anomalies.kinds).count == anomalies.kinds.count else {
            throw fail("anomaly kinds are listed twice; list each once and set perKind for the count")
        }
        guard anomalies.everyMs > 0 else { throw fail("anomaly spacing (every) must be positive") }
        guard anomalies.warmupMs >= 0, anomalies.quietMs >= 0 else {
            throw fail("anomaly warm-up and quiet time must not be negative")
        }
    }

    static func power10(_ exponent: Int) -> Double {
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }
}
