/// Something an operator should know about a running `BinanceFeed`, in the order it happened.
public enum BinanceFeedEvent: Sendable, Equatable {
    /// Connection number `connection` (1-based) is up and subscribed.
    case connected(connection: Int)
    /// The connection ended (`reason` says how) after delivering `trades` trades; the feed
    /// reconnects after `retryIn` unless it was stopped.
    case disconnected(connection: Int, reason: String, trades: Int, retryIn: Duration?)
    /// An attempt to connect failed; the next one follows after `retryIn`.
    case connectFailed(IngestError, attempt: Int, retryIn: Duration)
    /// Trade ids of a symbol were skipped: those trades were never received, so never produced.
    case gap(TradeGap)
}

/// What a `BinanceFeed` run did.
public struct BinanceFeedReport: Sendable, Equatable {
    /// Connections that completed the WebSocket handshake.
    public var connections = 0
    /// Connection attempts that failed (each retried after a backoff).
    public var failedAttempts = 0
    /// Trades handed to the sink (each trade id at most once per symbol).
    public var produced = 0
    /// Trades produced per symbol; every subscribed symbol is listed, also with 0.
    public var perSymbol: [String: Int] = [:]
    /// Trades received again with an id already produced, and dropped.
    public var duplicatesDropped = 0
    /// Gaps in trade ids, in the order seen (the first `gapSampleLimit` are kept).
    public var gaps: [TradeGap] = []
    /// Gaps seen in all, and the trades they add up to.
    public var gapCount = 0
    public var missedTrades: Int64 = 0
    /// Frames that carried no trade (subscription replies, errors from the server).
    public var nonTradeFrames = 0
    /// Frames with a trade that could not be keyed or checked (no symbol, trade id or time).
    public var malformedFrames = 0
    /// The first few non-trade and malformed frames: reason and an excerpt.
    public var frameSamples: [String] = []
    /// Delivery totals from the sink's final flush.
    public var delivery = DeliveryReport(delivered: 0, failed: 0, pending: 0)
    /// True when the run ended because its task was cancelled (the normal way to stop a feed).
    public var cancelled = false

    /// How many gaps and frame samples are kept.
    public static let gapSampleLimit = 1_000
    public static let frameSampleLimit = 20

    public init() {}
}
