/// Value types shared by every Vigil component: what goes into detection (configuration)
/// and what comes out of it (anomalies, window summaries, late and malformed records).
///
/// All of them are plain `Codable` values so that `Protocol` can carry them over the wire
/// and `Coordinator` can store them, without either knowing how detection works.

/// Kinds of anomaly Vigil reports. Raw values are stable: they are stored and hashed into ids.
public enum AnomalyKind: String, Codable, Sendable, CaseIterable, Comparable {
    case priceShock = "price_shock"
    case volatilityShock = "volatility_shock"
    case volumeSpike = "volume_spike"
    case tradeCountSpike = "trade_count_spike"
    case isolationOutlier = "isolation_outlier"
    case flashCrash = "flash_crash"
    case pumpAndDump = "pump_and_dump"
    case volatilityBurst = "volatility_burst"
    case liquidityGap = "liquidity_gap"

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// Severity by magnitude. Ordered `low < medium < high < critical`.
public enum Severity: String, Codable, Sendable, CaseIterable, Comparable {
    case low, medium, high, critical

    private var rank: Int {
        switch self {
        case .low: 0
        case .medium: 1
        case .high: 2
        case .critical: 3
        }
    }
    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
}

/// Confidence in an anomaly, from how many detectors agree and by how much.
public enum Quality: String, Codable, Sendable, CaseIterable {
    case high, medium, low
}

/// One detected anomaly.
///
/// `id` is a pure function of `(symbol, windowStartMs, kind)`, so a replay of the same
/// partition log after a crash or a rebalance produces the same id, and the coordinator's
/// store inserts it once. `detectedAtMs` is event time (the watermark that closed the window),
/// never the wall clock, so every field is deterministic.
public struct Anomaly: Codable, Sendable, Equatable, Hashable {
    public var id: String
    public var symbol: String
    public var kind: AnomalyKind
    public var severity: Severity
    public var quality: Quality
    public var windowStartMs: Int64
    public var windowEndMs: Int64
    public var detectedAtMs: Int64
    /// The observed value of the feature that triggered (e.g. the window's log return).
    public var value: Double
    /// What the baseline expected for that feature.
    public var expected: Double
    /// Detector scores by name (e.g. `"z_return": 5.2`, `"volume_ratio": 4.1`).
    public var scores: [String: Double]
    public var description: String
    /// True when a repeat of the same symbol and kind fell inside the cooldown: stored, not alerted.
    public var suppressed: Bool
    public var partition: Int32
    /// Offset of the record whose event time closed the window.
    public var offset: Int64

    public init(
        id: String, symbol: String, kind: AnomalyKind, severity: Severity, quality: Quality,
        windowStartMs: Int64, windowEndMs: Int64, detectedAtMs: Int64, value: Double,
        expected: Double, scores: [String: Double], description: String, suppressed: Bool,
        partition: Int32, offset: Int64
    ) {
        self.id = id
        self.symbol = symbol
        self.kind = kind
        self.severity = severity
        self.quality = quality
        self.windowStartMs = windowStartMs
        self.windowEndMs = windowEndMs
        self.detectedAtMs = detectedAtMs
        self.value = value
        self.expected = expected
        self.scores = scores
        self.description = description
        self.suppressed = suppressed
        self.partition = partition
        self.offset = offset
    }

    /// Deterministic id: FNV-1a 64 of `symbol|windowStartMs|kind`, as 16 lowercase hex digits.
    public static func makeID(symbol: String, windowStartMs: Int64, kind: AnomalyKind) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(symbol)|\(windowStartMs)|\(kind.rawValue)".utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// Features of one closed window of one symbol, kept by the coordinator for charts.
public struct WindowSummary: Codable, Sendable, Equatable {
    public var symbol: String
    public var startMs: Int64
    public var endMs: Int64
    public var count: Int64
    public var baseVolume: Double
    public var quoteVolume: Double
    public var vwap: Double
    public var open: Double
    public var high: Double
    public var low: Double
    public var close: Double
    public var logReturn: Double
    public var volatility: Double
    public var takerBuyRatio: Double
    public var largestTrade: Double
    public var longestGapMs: Int64
    /// Rush orders: runs of two or more fills in the same millisecond on the same taker side
    /// (one aggressive order sweeping the book). Optional so that summaries encoded before it
    /// existed decode; detection always sets it.
    public var rushClusters: Int64?
    /// Share of the window's base volume traded in rush runs (0...1); optional like `rushClusters`.
    public var rushVolumeShare: Double?

    public init(
        symbol: String, startMs: Int64, endMs: Int64, count: Int64, baseVolume: Double,
        quoteVolume: Double, vwap: Double, open: Double, high: Double, low: Double, close: Double,
        logReturn: Double, volatility: Double, takerBuyRatio: Double, largestTrade: Double,
        longestGapMs: Int64, rushClusters: Int64? = nil, rushVolumeShare: Double? = nil
    ) {
        self.symbol = symbol
        self.startMs = startMs
        self.endMs = endMs
        self.count = count
        self.baseVolume = baseVolume
        self.quoteVolume = quoteVolume
        self.vwap = vwap
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.logReturn = logReturn
        self.volatility = volatility
        self.takerBuyRatio = takerBuyRatio
        self.largestTrade = largestTrade
        self.longestGapMs = longestGapMs
        self.rushClusters = rushClusters
        self.rushVolumeShare = rushVolumeShare
    }
}

/// A trade older than its partition's watermark: counted and recorded, never applied.
public struct LateEvent: Codable, Sendable, Equatable {
    public var partition: Int32
    public var offset: Int64
    public var symbol: String
    public var eventTimeMs: Int64
    public var watermarkMs: Int64

    public init(partition: Int32, offset: Int64, symbol: String, eventTimeMs: Int64, watermarkMs: Int64) {
        self.partition = partition
        self.offset = offset
        self.symbol = symbol
        self.eventTimeMs = eventTimeMs
        self.watermarkMs = watermarkMs
    }
}

/// A record that could not be parsed as a trade: counted, recorded with its position, skipped.
public struct MalformedRecord: Codable, Sendable, Equatable {
    public var partition: Int32
    public var offset: Int64
    public var reason: String
    /// At most the first 200 bytes of the record, lossily decoded, for the operator.
    public var excerpt: String

    public init(partition: Int32, offset: Int64, reason: String, excerpt: String) {
        self.partition = partition
        self.offset = offset
        self.reason = reason
        self.excerpt = excerpt
    }
}
