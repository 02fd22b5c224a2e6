import NIOSSL

/// What a `BinanceFeed` subscribes to and how it keeps the connection.
public struct BinanceFeedConfig: Sendable {
    /// Binance spot's public market-data endpoint.
    public static let defaultURL = "wss://stream.binance.com:9443"
    /// Binance accepts at most this many streams on one connection.
    public static let maximumSymbols = 1024

    public var endpoint: WebSocketEndpoint
    /// Upper-case symbols (`BTCUSDT`), in subscription order, without duplicates.
    public private(set) var symbols: [String]
    /// Delays between connection attempts (reset after a connection that delivered trades).
    public var backoff = ReconnectBackoff()
    /// Longest wait for the TCP connection, the TLS handshake and the HTTP upgrade together.
    public var connectTimeout: Duration = .seconds(10)
    /// After this long without any frame from the server the feed sends a ping; after twice
    /// this long it drops the connection as dead and reconnects.
    public var keepaliveInterval: Duration = .seconds(30)
    /// How often progress (trades per symbol, gaps) is logged at info level.
    public var progressInterval: Duration = .seconds(60)
    /// TLS settings for `wss://` (default: the system's trust roots, full verification).
    public var tls: TLSConfiguration = .makeClientConfiguration()
    /// Largest accepted message (after reassembling fragments), in bytes.
    public var maximumFrameSize = 1 << 20
    /// Seed of the reconnect jitter; nil: a random seed.
    public var jitterSeed: UInt64?

    /// - Parameters:
    ///   - url: `ws://` or `wss://` base URL of the server (`/stream` is the default path).
    ///   - symbols: symbols in any case (`btcusdt`), 1-20 letters or digits each; duplicates are dropped.
    /// - Throws: `IngestError` `.invalidArgument` naming the bad URL or symbol.
    public init(url: String = Self.defaultURL, symbols: [String]) throws(IngestError) {
        endpoint = try WebSocketEndpoint(url: url)
        var seen = Set<String>()
        var normalized: [String] = []
        for raw in symbols {
            let symbol = raw.uppercased()
            guard (1...20).contains(symbol.utf8.count), symbol.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) }) else {
                throw IngestError(.invalidArgument, "symbol \"\(raw)\": expected 1-20 letters or digits, like btcusdt")
            }
            if seen.insert(symbol).inserted { normalized.append(symbol) }
        }
        guard !normalized.isEmpty else {
            throw IngestError(.invalidArgument, "no symbols to subscribe to; give at least one, like btcusdt,ethusdt")
        }
        guard normalized.count <= Self.maximumSymbols else {
            throw IngestError(.invalidArgument, "\(normalized.count) symbols: Binance allows at most \(Self.maximumSymbols) streams per connection")
        }
        self.symbols = normalized
    }

    /// The HTTP request target that subscribes to every symbol's trade stream:
    /// `/stream?streams=btcusdt@trade/ethusdt@trade`. Every (re)connection asks for it again.
    public var requestTarget: String {
        endpoint.path + "?streams=" + symbols.map { $0.lowercased() + "@trade" }.joined(separator: "/")
    }

    /// The full stream URL, for logs and messages.
    public var streamURL: String {
        "\(endpoint)?streams=" + symbols.map { $0.lowercased() + "@trade" }.joined(separator: "/")
    }
}
