/// Trade ids of a symbol that a feed never received: `first...last`, both inclusive.
public struct TradeGap: Sendable, Equatable, CustomStringConvertible {
    public var symbol: String
    /// The first missing trade id (one past the last id received before the gap).
    public var first: Int64
    /// The last missing trade id (one before the first id received after the gap).
    public var last: Int64
    /// True when the gap opened across a reconnect (trades sent while the feed was
    /// disconnected); false when the exchange skipped ids within one connection.
    public var afterReconnect: Bool
    /// The 1-based connection number on which the gap was seen.
    public var connection: Int

    public init(symbol: String, first: Int64, last: Int64, afterReconnect: Bool, connection: Int) {
        self.symbol = symbol
        self.first = first
        self.last = last
        self.afterReconnect = afterReconnect
        self.connection = connection
    }

    /// How many trades are missing.
    public var count: Int64 { last - first + 1 }

    public var description: String {
        let ids = first == last ? "trade id \(first)" : "trade ids \(first)...\(last)"
        let when = afterReconnect ? "across the reconnect (connection \(connection))" : "within connection \(connection)"
        return "\(symbol): \(ids) (\(count) trade\(count == 1 ? "" : "s")) never received \(when)"
    }
}

/// Checks each symbol's trade ids for continuity across connections: pure state, no I/O.
///
/// Binance numbers each symbol's trades `t` consecutively. A feed that reconnects misses what
/// was traded while it was away (the stream does not replay), and may see a trade twice if a
/// server resends. So, per symbol:
/// - the first trade ever seen starts the sequence (`.first`);
/// - the next id (`last + 1`) is `.inOrder`;
/// - a larger id is a `.gap`: the ids in between were never received. The gap is flagged
///   `afterReconnect` when it is the symbol's first trade on a new connection;
/// - an id at or below the last one is a `.duplicate`, already produced: the caller drops it,
///   so a record reaches Kafka at most once per trade id.
struct TradeIdTracker {
    enum Verdict: Equatable {
        case first
        case inOrder
        case gap(first: Int64, last: Int64, afterReconnect: Bool)
        case duplicate
    }

    /// Index = symbol index; nil = no trade seen yet.
    private var lastId: [Int64?] = []
    /// Whether the symbol has had a trade on the current connection.
    private var seenOnConnection: [Bool] = []

    /// A new connection begins: each symbol's next trade is checked against the last one
    /// received on any earlier connection.
    mutating func connectionStarted() {
        for index in seenOnConnection.indices { seenOnConnection[index] = false }
    }

    mutating func observe(symbol: Int, id: Int64) -> Verdict {
        if symbol >= lastId.count {
            lastId += Array(repeating: nil, count: symbol + 1 - lastId.count)
            seenOnConnection += Array(repeating: false, count: symbol + 1 - seenOnConnection.count)
        }
        let firstOnConnection = !seenOnConnection[symbol]
        seenOnConnection[symbol] = true
        guard let last = lastId[symbol] else {
            lastId[symbol] = id
            return .first
        }
        if id <= last { return .duplicate }
        lastId[symbol] = id
        if id == last + 1 { return .inOrder }
        return .gap(first: last + 1, last: id - 1, afterReconnect: firstOnConnection)
    }
}
