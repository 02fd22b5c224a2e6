extension DetectionConfig {
    /// What a trade may claim before it is applied to a partition's state: the defence against a
    /// hostile or broken feed. A trade outside these bounds becomes a `MalformedRecord` (counted,
    /// stored with its partition and offset, changing nothing), like one that does not parse.
    ///
    /// Every check looks only at the record and at state that snapshots carry, so results stay a
    /// pure function of the partition log (`vigil detect` and the cluster agree).
    public struct InputLimits: Codable, Sendable, Equatable {
        /// Symbols with window state in one partition. A trade of a new symbol beyond it is
        /// rejected; the symbols already tracked go on. Bounds a partition's memory.
        public var maxSymbolsPerPartition: Int = 10_000
        /// Trade times (`T`, ms since the Unix epoch) outside `minTradeTimeMs...maxTradeTimeMs`
        /// are rejected: seconds or microseconds instead of milliseconds, zero, or a year far
        /// in the future, which would otherwise move the watermark and make every later trade
        /// late. Defaults: 2009-01-01 and 2100-01-01.
        public var minTradeTimeMs: Int64 = 1_230_768_000_000
        public var maxTradeTimeMs: Int64 = 4_102_444_800_000
        /// Larger prices and quantities are rejected (the parser already refuses zero or
        /// negative prices, negative quantities, NaN and more than 18 significant digits).
        public var maxPrice: Double = 1e12
        public var maxQuantity: Double = 1e15
        /// Reject a trade whose id (`t`) is not above the last id applied for its symbol: a
        /// duplicate or a replayed trade (Binance ids increase by one per symbol). Trades
        /// without an id are not checked. Late trades are reported as late, as always.
        public var rejectDuplicateTradeIDs = true

        public init() {}

        /// One line per unusable bound, naming it; empty when valid.
        public func validationProblems() -> [String] {
            var problems: [String] = []
            if maxSymbolsPerPartition < 1 {
                problems.append("inputLimits.maxSymbolsPerPartition must be >= 1 (got \(maxSymbolsPerPartition))")
            }
            if minTradeTimeMs >= maxTradeTimeMs {
                problems.append("inputLimits.minTradeTimeMs must be before maxTradeTimeMs (got \(minTradeTimeMs) and \(maxTradeTimeMs))")
            }
            if !(maxPrice > 0) || !maxPrice.isFinite {
                problems.append("inputLimits.maxPrice must be a finite number > 0 (got \(maxPrice))")
            }
            if !(maxQuantity > 0) || !maxQuantity.isFinite {
                problems.append("inputLimits.maxQuantity must be a finite number > 0 (got \(maxQuantity))")
            }
            return problems
        }

        /// Why `trade` is out of bounds on its own (time, price, quantity), or nil.
        func problem(with trade: Trade) -> String? {
            if trade.eventTimeMs < minTradeTimeMs || trade.eventTimeMs > maxTradeTimeMs {
                return "trade time \(trade.eventTimeMs) ms is outside \(minTradeTimeMs)...\(maxTradeTimeMs) (detection.min_trade_time / max_trade_time); is it in milliseconds?"
            }
            if trade.price > maxPrice {
                return "price \(trade.price) is above \(maxPrice) (detection.max_price)"
            }
            if trade.quantity > maxQuantity {
                return "quantity \(trade.quantity) is above \(maxQuantity) (detection.max_quantity)"
            }
            return nil
        }
    }

    /// `DetectionConfig()` with `InputLimits()` on: where cluster.conf starts.
    public static var withInputLimits: DetectionConfig {
        var config = DetectionConfig()
        config.inputLimits = InputLimits()
        return config
    }
}
