import Detection

/// A synthetic but realistic crypto market, with labelled anomalies, as a merged stream of
/// Binance trade-stream JSON lines in event-time order.
///
/// Pure and deterministic: no clock, no system randomness. Equal `SimulatorConfig`s give
/// byte-identical output and labels; each symbol draws from its own seeded generator.
/// Event time runs from `config.startMs` for `config.durationMs`; a consumer that wants
/// real time paces the stream itself (see `Ingestor`).
///
/// Trades of different symbols are merged by their exact (sub-millisecond) arrival time, so `T`
/// never decreases along the stream; trades at equal times come in symbol order. Trade ids
/// increase by one per symbol, `E` is `T + 1`, prices are rounded to the tick and quantities to
/// the step of each symbol (see `SymbolProfile` and `SymbolStream` for the market model).
///
/// ```swift
/// var market = try MarketSimulator(config: config)
/// var record = IngestRecord()
/// while market.next(into: &record) { send(record.line, key: record.key) }
/// ```
public struct MarketSimulator: TradeSource, Sendable {
    public let config: SimulatorConfig
    /// Every anomaly the simulator will inject, sorted by start time. Known up front; the
    /// `Ingestor` writes each one out as the stream reaches its start (`takeLabels(startedBy:)`).
    public let labels: [AnomalyLabel]
    public let symbols: [String]
    /// Average trades per second of each symbol (by index) over the whole run: its share of
    /// `config.tradesPerSecond`. Outside anomalies a symbol trades a little slower, so that the
    /// trades its anomalies add or remove do not change the average.
    public let symbolTradesPerSecond: [Double]

    private var streams: [SymbolStream]
    private var produced = 0
    private var nextLabel = 0

    /// Validates `config` and plans the anomalies.
    /// - Throws: `IngestError` `.invalidConfig` for a bad setting, `.scheduleDoesNotFit` when
    ///   the anomalies need more event time than `durationMs`.
    public init(config: SimulatorConfig) throws(IngestError) {
        try config.validate()
        self.config = config
        let totalActivity = config.symbols.reduce(0) { $0 + $1.activity }
        let rates = config.symbols.map { config.tradesPerSecond * $0.activity / totalActivity }
        let planned = try AnomalyScheduler.plan(config, tradesPerSecond: rates)
        labels = planned.map(\.label)
        symbols = config.symbols.map(\.symbol)
        symbolTradesPerSecond = rates
        streams = config.symbols.indices.map { index in
            let anomalies = planned.filter { $0.symbolIndex == index }
            // Scale the normal rate so that the run, anomalies included, averages the configured rate.
            let extraMs = anomalies.reduce(0) { $0 + $1.extraTradingMs }
            let duration = Double(config.durationMs)
            let normalRate = rates[index] * duration / max(duration + extraMs, duration / 2)
            return SymbolStream(profile: config.symbols[index], stream: UInt64(index), config: config,
                                tradesPerSecond: normalRate, anomalies: anomalies.map(\.phases))
        }
    }

    /// Writes the next trade into `record` and returns true, or returns false once every symbol
    /// has reached the end of the simulated duration.
    public mutating func next(into record: inout IngestRecord) -> Bool {
        // A linear scan: simulators run a handful of symbols, where it beats a heap.
        var chosen = -1
        var earliest = Double.infinity
        for index in streams.indices where streams[index].nextTradeMs < earliest {
            earliest = streams[index].nextTradeMs
            chosen = index
        }
        guard chosen >= 0 else { return false }
        let (timeMs, keyRange) = streams[chosen].emit(into: &record.line)
        produced += 1
        record.keyRange = keyRange
        record.symbolIndex = chosen
        record.timeMs = timeMs
        record.lineNumber = produced
        return true
    }

    public mutating func takeLabels(startedBy timeMs: Int64) -> [AnomalyLabel] {
        guard nextLabel < labels.count, labels[nextLabel].startMs <= timeMs else { return [] }
        let first = nextLabel
        while nextLabel < labels.count, labels[nextLabel].startMs <= timeMs { nextLabel += 1 }
        return Array(labels[first..<nextLabel])
    }
}
