import Detection
import Foundation

/// The recorded Binance spot trades in /work/shared/data/real (BTCUSDT and ETHUSDT, complete:
/// each symbol's trade ids are consecutive), read from the repository's sibling `shared`
/// directory so they are never copied into the project.
enum RealTrades {
    static let spotPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // IngestTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository
        .appendingPathComponent("../shared/data/real/real_trades_hftbacktest_spot.jsonl").standardized.path

    /// Every line of the spot file, in order.
    static func spotLines() throws -> [String] {
        try String(contentsOfFile: spotPath, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// The line's symbol and trade id.
    static func identity(_ line: String) throws -> (symbol: String, id: Int64) {
        let trade = try TradeParser.parse(line)
        guard let id = trade.tradeID else { throw CocoaError(.coderValueNotFound) }
        return (trade.symbol.string, id)
    }
}
