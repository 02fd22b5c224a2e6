/// A symbol's rolling baseline: the features of its last `capacity` closed windows.
///
/// A window is compared with the baseline before it is appended to it, so a spike is never
/// part of the yardstick it is measured with.
struct Baseline: Equatable, Sendable {
    let capacity: Int
    /// Ring storage; `entries[(head + i) % capacity]` is the i-th oldest of `count`.
    private var entries: [WindowFeatures] = []
    private var head = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        entries.reserveCapacity(self.capacity)
    }

    /// Closed windows held (at most `capacity`).
    var count: Int { entries.count }

    /// The windows held, oldest first.
    var windows: [WindowFeatures] {
        Array(entries[head...] + entries[..<head])
    }

    mutating func append(_ window: WindowFeatures) {
        if entries.count < capacity {
            entries.append(window)
        } else {
            entries[head] = window
            head = (head + 1) % capacity
        }
    }

    /// Forgets every window (warm-up starts again).
    mutating func reset() {
        entries.removeAll(keepingCapacity: true)
        head = 0
    }

    /// Robust location and scale of the features the detectors read.
    func statistics() -> BaselineStatistics {
        let held = entries
        let volatility = RobustEstimate(
            held.map(\.volatility), absoluteFloor: RobustEstimate.volatilityFloor,
            relativeFloor: RobustEstimate.relativeFloor)
        return BaselineStatistics(
            windows: held.count,
            logReturn: RobustEstimate(
                held.map(\.logReturn),
                absoluteFloor: max(RobustEstimate.logReturnFloor, RobustEstimate.returnToVolatilityFloor * volatility.median),
                relativeFloor: RobustEstimate.relativeFloor),
            volatility: volatility,
            logCount: RobustEstimate(
                held.map { naturalLog(1 + Double($0.count)) }, absoluteFloor: RobustEstimate.logCountFloor,
                relativeFloor: 0),
            logQuoteVolume: RobustEstimate(
                held.map { naturalLog(1 + $0.quoteVolume) }, absoluteFloor: RobustEstimate.logCountFloor,
                relativeFloor: 0),
            medianQuoteVolume: RobustEstimate.median(held.map(\.quoteVolume)),
            medianTradeCount: RobustEstimate.median(held.map { Double($0.count) }),
            medianLongestGapMs: RobustEstimate.median(held.map { Double($0.longestGapMs) }))
    }
}

/// What a baseline says about one feature: its median and a robust scale.
///
/// `scale = max(1.4826 * MAD, relativeFloor * |median|, absoluteFloor)`. The MAD (median
/// absolute deviation) scaled by 1.4826 estimates the standard deviation of normal data, and a
/// few spikes in the baseline barely move it. The floors keep a flat baseline (MAD = 0, e.g. a
/// price that did not move for 12 windows) from turning any change into an infinite z-score:
/// - log return: absolute floor 1e-4 (1 basis point), so a flat market alerts at the
///   threshold times 1 bp (3.5 bp with z = 3.5), not at the first tick; and half the median
///   realized volatility, so that a net move within the price's ordinary tick-to-tick motion
///   (bid-ask bounce included) is never a shock, however quiet the last few windows' returns
///   happened to be (12 overlapping windows can give a MAD far below the true spread);
/// - volatility: absolute floor 1e-4, and 10% of the median, so a steady market needs its
///   volatility to rise by a real fraction of itself;
/// - `ln(1 + trades)` and `ln(1 + quote volume)`: absolute floor 0.1 (about 10 % more per unit of
///   scale), no relative floor (the median of a logarithm says nothing about its spread).
struct RobustEstimate: Equatable, Sendable {
    static let madToSigma = 1.4826
    static let logReturnFloor = 1e-4
    static let volatilityFloor = 1e-4
    static let relativeFloor = 0.1
    static let logCountFloor = 0.1
    static let returnToVolatilityFloor = 0.5

    var median: Double
    /// Median absolute deviation from the median (unscaled).
    var mad: Double
    /// The floored robust scale; always > 0.
    var scale: Double

    init(median: Double, mad: Double, scale: Double) {
        self.median = median
        self.mad = mad
        self.scale = scale
    }

    init(_ values: [Double], absoluteFloor: Double, relativeFloor: Double) {
        let m = Self.median(values)
        let deviation = Self.median(values.map { abs($0 - m) })
        self.init(
            median: m, mad: deviation,
            scale: max(Self.madToSigma * deviation, relativeFloor * abs(m), absoluteFloor))
    }

    /// `(x - median) / scale`.
    func zScore(_ x: Double) -> Double { (x - median) / scale }

    /// The median (mean of the two middle values for an even count); 0 for no values.
    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }
}

/// The baseline's view of a symbol, computed when a window closes.
struct BaselineStatistics: Equatable, Sendable {
    /// Windows the statistics come from.
    var windows: Int
    var logReturn: RobustEstimate
    var volatility: RobustEstimate
    /// Of `ln(1 + trades)`.
    var logCount: RobustEstimate
    /// Of `ln(1 + quote volume)`.
    var logQuoteVolume: RobustEstimate
    var medianQuoteVolume: Double
    var medianTradeCount: Double
    var medianLongestGapMs: Double
}
