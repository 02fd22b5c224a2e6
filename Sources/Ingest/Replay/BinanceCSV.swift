/// What a replay file holds.
public enum ReplayFormat: Sendable, Equatable, CustomStringConvertible {
    /// One Binance trade JSON object per line (`{"e":"trade",…}`), produced as is.
    case jsonLines
    /// Binance public-data `trades` CSV: `id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]`.
    case binanceTrades
    /// Binance public-data `aggTrades` CSV:
    /// `agg_trade_id,price,qty,first_trade_id,last_trade_id,time,is_buyer_maker[,is_best_match]`.
    case binanceAggTrades

    public var description: String {
        switch self {
        case .jsonLines: "JSON lines"
        case .binanceTrades: "Binance trades CSV"
        case .binanceAggTrades: "Binance aggTrades CSV"
        }
    }
}

/// Binance's public trade archives (data.binance.vision) as the trade JSON the workers parse.
/// Pure: bytes in, bytes out.
///
/// Each row becomes one object, keyed by the symbol, in Binance's own WebSocket shapes:
/// - trades: `{"e":"trade","E":T,"s":"BTCUSDT","t":id,"p":"price","q":"qty","T":T,"m":maker}`
/// - aggTrades: `{"e":"aggTrade","E":T,"s":"BTCUSDT","a":agg_id,"p":"price","q":"qty","f":first_id,"l":last_id,"T":T,"m":maker}`
///
/// Prices and quantities are copied as written (they must be plain decimals). `time` is
/// milliseconds, or microseconds (Binance's spot archives from 2025 on) when it has 16 digits
/// or more: it is then divided by 1000, since `T` is milliseconds. The archive has no event
/// time, so `E` repeats `T`. `is_buyer_maker` is `true`/`false` in any case (`True` as written
/// by Binance); `is_best_match` is read past but not kept.
enum BinanceCSV {
    /// A file's column layout, from its header or its first row.
    struct Layout: Equatable {
        var format: ReplayFormat
        /// Whether the first non-blank line is a header (to be skipped).
        var hasHeader: Bool
    }

    /// Most fields a row has (aggTrades with `is_best_match`).
    static let maximumFields = 8

    /// Tells the layout from the first non-blank line: a header names its columns (a column
    /// with "first" in its name means aggTrades); a data row tells by its field count, and for
    /// 7 fields by whether the sixth is a boolean (trades with `is_best_match`) or a time (aggTrades).
    static func detect(firstLine line: UnsafeBufferPointer<UInt8>) -> Result<Layout, Problem> {
        var fields: [Range<Int>] = []
        split(line, into: &fields)
        if integer(line, fields[0]) == nil {
            let names = fields.map { String(decoding: UnsafeBufferPointer(rebasing: line[$0]), as: UTF8.self).lowercased() }
            let format: ReplayFormat = names.contains { $0.contains("first") } ? .binanceAggTrades : .binanceTrades
            guard fieldCounts(format).contains(fields.count) else {
                return .failure(.init("a header of \(fields.count) columns (\(names.joined(separator: ","))) matches neither layout; expected \(columns(.binanceTrades)) or \(columns(.binanceAggTrades))"))
            }
            return .success(Layout(format: format, hasHeader: true))
        }
        switch fields.count {
        case 6: return .success(Layout(format: .binanceTrades, hasHeader: false))
        case 8: return .success(Layout(format: .binanceAggTrades, hasHeader: false))
        case 7: return .success(Layout(format: boolean(line, fields[5]) != nil ? .binanceTrades : .binanceAggTrades, hasHeader: false))
        default:
            return .failure(.init("\(fields.count) comma-separated fields; expected \(columns(.binanceTrades)) or \(columns(.binanceAggTrades))"))
        }
    }

    /// The symbol in a Binance archive's file name (`BTCUSDT-trades-2024-08-09.zip` → `BTCUSDT`), if any.
    static func symbol(fromFileName path: String) -> String? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let parts = name.split(separator: "-", maxSplits: 2)
        guard parts.count == 3, parts[1] == "trades" || parts[1] == "aggTrades" else { return nil }
        let symbol = parts[0]
        guard (1...20).contains(symbol.utf8.count), symbol.utf8.allSatisfy({ isAlphanumeric($0) }) else { return nil }
        return symbol.uppercased()
    }

    /// Writes the JSON of one data row into `out` (replacing its contents).
    /// - Returns: the symbol's range in `out` and the trade time in ms, or why the row is unusable.
    static func encode(
        row: UnsafeBufferPointer<UInt8>, format: ReplayFormat, symbol: [UInt8], fields: inout [Range<Int>], into out: inout [UInt8]
    ) -> Result<(symbol: Range<Int>, timeMs: Int64), Problem> {
        split(row, into: &fields)
        guard fieldCounts(format).contains(fields.count) else {
            return .failure(.init("\(fields.count) comma-separated fields; expected \(columns(format))"))
        }
        let isAggregate = format == .binanceAggTrades
        let timeIndex = isAggregate ? 5 : 4
        guard let id = integer(row, fields[0]) else {
            return .failure(.init("field 1 (\(isAggregate ? "agg_trade_id" : "id")) is not a whole number"))
        }
        guard isDecimal(row, fields[1]) else { return .failure(.init("field 2 (price) is not a plain decimal number")) }
        guard isDecimal(row, fields[2]) else { return .failure(.init("field 3 (quantity) is not a plain decimal number")) }
        guard var time = integer(row, fields[timeIndex]) else {
            return .failure(.init("field \(timeIndex + 1) (time) is not a whole number"))
        }
        if time >= 1_000_000_000_000_000 { time /= 1_000 }  // microseconds
        guard let maker = boolean(row, fields[timeIndex + 1]) else {
            return .failure(.init("field \(timeIndex + 2) (is_buyer_maker) is not true or false"))
        }

        var firstAndLast: (first: Int64, last: Int64)?
        if isAggregate {
            guard let first = integer(row, fields[3]) else { return .failure(.init("field 4 (first_trade_id) is not a whole number")) }
            guard let last = integer(row, fields[4]) else { return .failure(.init("field 5 (last_trade_id) is not a whole number")) }
            firstAndLast = (first, last)
        }

        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: isAggregate ? #"{"e":"aggTrade","E":"#.utf8 : #"{"e":"trade","E":"#.utf8)
        appendDecimal(time, to: &out)
        out.append(contentsOf: #","s":""#.utf8)
        let symbolStart = out.count
        out.append(contentsOf: symbol)
        let symbolRange = symbolStart..<out.count
        out.append(contentsOf: isAggregate ? #"","a":"#.utf8 : #"","t":"#.utf8)
        appendDecimal(id, to: &out)
        out.append(contentsOf: #","p":""#.utf8)
        out.append(contentsOf: row[fields[1]])
        out.append(contentsOf: #"","q":""#.utf8)
        out.append(contentsOf: row[fields[2]])
        out.append(UInt8(ascii: "\""))
        if let ids = firstAndLast {
            out.append(contentsOf: #","f":"#.utf8)
            appendDecimal(ids.first, to: &out)
            out.append(contentsOf: #","l":"#.utf8)
            appendDecimal(ids.last, to: &out)
        }
        out.append(contentsOf: #","T":"#.utf8)
        appendDecimal(time, to: &out)
        out.append(contentsOf: maker ? #","m":true}"#.utf8 : #","m":false}"#.utf8)
        return .success((symbolRange, time))
    }

    /// Why a line cannot be used.
    struct Problem: Error, Equatable, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: - Fields

    private static func columns(_ format: ReplayFormat) -> String {
        format == .binanceAggTrades
            ? "agg_trade_id,price,qty,first_trade_id,last_trade_id,time,is_buyer_maker[,is_best_match]"
            : "id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]"
    }

    private static func fieldCounts(_ format: ReplayFormat) -> ClosedRange<Int> {
        format == .binanceAggTrades ? 7...8 : 6...7
    }

    /// Splits on commas (Binance archives never quote), trimming blanks around each field;
    /// stops after `maximumFields + 1` so an overlong row is still reported by its count.
    private static func split(_ line: UnsafeBufferPointer<UInt8>, into fields: inout [Range<Int>]) {
        fields.removeAll(keepingCapacity: true)
        var start = 0
        var index = 0
        while index <= line.count {
            if index == line.count || line[index] == UInt8(ascii: ",") {
                var lower = start
                var upper = index
                while lower < upper, isBlank(line[lower]) { lower += 1 }
                while upper > lower, isBlank(line[upper - 1]) { upper -= 1 }
                fields.append(lower..<upper)
                if fields.count > maximumFields { return }
                start = index + 1
            }
            index += 1
        }
    }

    private static func integer(_ line: UnsafeBufferPointer<UInt8>, _ field: Range<Int>) -> Int64? {
        guard !field.isEmpty, field.count <= 18 else { return nil }
        var value: Int64 = 0
        for index in field {
            let byte = line[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    private static func isDecimal(_ line: UnsafeBufferPointer<UInt8>, _ field: Range<Int>) -> Bool {
        var digits = 0
        var dots = 0
        for index in field {
            switch line[index] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits += 1
            case UInt8(ascii: "."): dots += 1
            default: return false
            }
        }
        return digits > 0 && dots <= 1
    }

    private static func boolean(_ line: UnsafeBufferPointer<UInt8>, _ field: Range<Int>) -> Bool? {
        func matches(_ word: StaticString) -> Bool {
            guard field.count == word.utf8CodeUnitCount else { return false }
            return zip(line[field], UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)).allSatisfy { $0 | 0x20 == $1 }
        }
        if matches("true") { return true }
        if matches("false") { return false }
        return nil
    }

    /// Appends a non-negative value's decimal digits.
    private static func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
        let start = out.count
        var rest = value
        repeat {
            out.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        out[start...].reverse()
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
    }
}
