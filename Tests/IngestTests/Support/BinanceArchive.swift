import Detection
import Foundation
import XCTest

/// Writes Binance public-data archives (data.binance.vision layouts) made from recorded trades,
/// compressed with the system's own `gzip` and `zip` when asked.
struct BinanceArchive {
    let directory: URL

    /// `id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]` rows.
    /// - Parameter microseconds: write `time` in µs, as Binance's spot archives do from 2025 on.
    func tradesRows(_ trades: [Trade], lines: [String], bestMatch: Bool, microseconds: Bool = false, capitalized: Bool = true) -> [String] {
        zip(trades, lines).map { trade, line in
            let time = microseconds ? trade.eventTimeMs * 1_000 + 123 : trade.eventTimeMs
            var fields = [String(trade.tradeID!), field("p", of: line), field("q", of: line), "123.45", String(time), bool(trade.buyerIsMaker, capitalized)]
            if bestMatch { fields.append(bool(true, capitalized)) }
            return fields.joined(separator: ",")
        }
    }

    /// `agg_trade_id,price,qty,first_trade_id,last_trade_id,time,is_buyer_maker[,is_best_match]`
    /// rows: each trade as its own aggregate, numbered from `firstAggregateId`.
    func aggTradesRows(_ trades: [Trade], lines: [String], bestMatch: Bool, firstAggregateId: Int64 = 500) -> [String] {
        zip(trades, lines).enumerated().map { index, pair in
            let (trade, line) = pair
            var fields = [String(firstAggregateId + Int64(index)), field("p", of: line), field("q", of: line),
                          String(trade.tradeID!), String(trade.tradeID!), String(trade.eventTimeMs), bool(trade.buyerIsMaker, true)]
            if bestMatch { fields.append("True") }
            return fields.joined(separator: ",")
        }
    }

    /// Writes `rows` (after `header`, if any) as `name`; compresses when `name` ends in .gz or .zip
    /// (the archive holds `name` without that suffix). Returns the path.
    func write(_ rows: [String], header: String? = nil, as name: String) throws -> String {
        let text = ((header.map { [$0] } ?? []) + rows).joined(separator: "\n") + "\n"
        if name.hasSuffix(".gz") || name.hasSuffix(".zip") {
            let inner = directory.appendingPathComponent(String(name.prefix { $0 != "." }) + ".csv")
            try Data(text.utf8).write(to: inner)
            let output = directory.appendingPathComponent(name).path
            if name.hasSuffix(".gz") {
                try run(["sh", "-c", "gzip -c \"$0\" > \"$1\"", inner.path, output])
            } else {
                try run(["zip", "-j", "-q", output, inner.path])
            }
            try FileManager.default.removeItem(at: inner)
            return output
        }
        let path = directory.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw XCTSkip("`\(arguments.joined(separator: " "))` failed with \(process.terminationStatus); install \(arguments[0])")
        }
    }

    /// The text of a string field of a trade JSON line, as written.
    private func field(_ key: String, of line: String) -> String {
        guard let start = line.range(of: "\"\(key)\":\"") else { return "?" }
        return String(line[start.upperBound...].prefix { $0 != "\"" })
    }

    private func bool(_ value: Bool, _ capitalized: Bool) -> String {
        capitalized ? (value ? "True" : "False") : (value ? "true" : "false")
    }
}
