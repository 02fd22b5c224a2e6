import Detection

/// One record on its way to Kafka: a trade's JSON line, and where its key (the symbol) lies in it.
///
/// Sources overwrite the same record on every `next(into:)`, reusing `line`'s storage, so a
/// producer can stream millions of trades without allocating per trade.
public struct IngestRecord: Sendable {
    /// The trade as one JSON object, without a line terminator.
    public var line: [UInt8]
    /// Range of the symbol's bytes inside `line`: the Kafka key.
    public var keyRange: Range<Int>
    /// Index of the symbol in the source's `symbols`.
    public var symbolIndex: Int
    /// The trade time `T` (ms since the Unix epoch), which pacing follows.
    public var timeMs: Int64
    /// 1-based line number in a replayed file; the 1-based trade number for the simulator.
    public var lineNumber: Int

    public init() {
        line = []
        line.reserveCapacity(256)
        keyRange = 0..<0
        symbolIndex = 0
        timeMs = 0
        lineNumber = 0
    }

    /// The Kafka key: the symbol's bytes.
    public var key: ArraySlice<UInt8> { line[keyRange] }
}

/// A line of input that was skipped because it could not be keyed by symbol or timed.
public struct MalformedLine: Sendable, Equatable {
    /// 1-based line number in the input file.
    public var lineNumber: Int
    /// What was missing or wrong, e.g. `no "s" (symbol) field`.
    public var reason: String
    /// At most the first 120 bytes of the line, lossily decoded, for the operator.
    public var excerpt: String

    public init(lineNumber: Int, reason: String, excerpt: String) {
        self.lineNumber = lineNumber
        self.reason = reason
        self.excerpt = excerpt
    }
}

/// A stream of trades in the order they are to be produced: the simulator or a file replay.
public protocol TradeSource {
    /// Symbol names by `IngestRecord.symbolIndex`. A replay appends symbols as it meets them.
    var symbols: [String] { get }
    /// Fills `record` with the next trade and returns true, or returns false at the end.
    mutating func next(into record: inout IngestRecord) throws -> Bool
    /// Input lines skipped so far because they had no usable symbol or trade time.
    var malformedCount: Int { get }
    /// The first skipped lines (a replay keeps up to 100), for the report.
    var malformedSamples: [MalformedLine] { get }
    /// Labels of injected anomalies that start at or before `timeMs`, each returned once, in start order.
    mutating func takeLabels(startedBy timeMs: Int64) -> [AnomalyLabel]
}

extension TradeSource {
    public var malformedCount: Int { 0 }
    public var malformedSamples: [MalformedLine] { [] }
    public mutating func takeLabels(startedBy timeMs: Int64) -> [AnomalyLabel] { [] }
}
