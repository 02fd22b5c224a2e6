/// Finds the two fields replay needs in a Binance trade JSON line, without parsing the rest:
/// the symbol `"s"` (the Kafka key) and the trade time `"T"` (for pacing).
///
/// It looks for the keys `"s"` and `"T"` followed by a colon, at any depth, and trusts the line
/// to be JSON otherwise: a line with a bad price still goes to Kafka, where the worker counts it
/// as malformed with its offset. What it rejects, it names (see `Failure`).
enum TradeFieldExtractor {
    struct Fields: Equatable {
        /// Range of the symbol's bytes within the line.
        var symbol: Range<Int>
        var timeMs: Int64
    }

    /// Longest accepted symbol, as in Detection's `SymbolKey`.
    static let maximumSymbolLength = 32

    enum Failure: Error, Equatable, CustomStringConvertible {
        case noSymbol
        case badSymbol
        case noTradeTime
        case badTradeTime

        var description: String {
            switch self {
            case .noSymbol: #"no "s" (symbol) field"#
            case .badSymbol: #""s" is not a string of 1-32 printable ASCII characters without escapes"#
            case .noTradeTime: #"no "T" (trade time) field"#
            case .badTradeTime: #""T" is not a whole number of milliseconds"#
            }
        }
    }

    static func extract(_ line: UnsafeBufferPointer<UInt8>) -> Result<Fields, Failure> {
        guard var index = valueStart(ofKey: UInt8(ascii: "s"), in: line) else { return .failure(.noSymbol) }
        guard index < line.count, line[index] == UInt8(ascii: "\"") else { return .failure(.badSymbol) }
        index += 1
        let symbolStart = index
        while index < line.count, line[index] != UInt8(ascii: "\"") {
            let byte = line[index]
            guard byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") else { return .failure(.badSymbol) }
            index += 1
        }
        let symbolLength = index - symbolStart
        guard index < line.count, symbolLength > 0, symbolLength <= maximumSymbolLength else {
            return .failure(.badSymbol)
        }

        guard var cursor = valueStart(ofKey: UInt8(ascii: "T"), in: line) else { return .failure(.noTradeTime) }
        var time: Int64 = 0
        var digits = 0
        while cursor < line.count, line[cursor] >= UInt8(ascii: "0"), line[cursor] <= UInt8(ascii: "9") {
            guard digits < 18 else { return .failure(.badTradeTime) }
            time = time * 10 + Int64(line[cursor] - UInt8(ascii: "0"))
            digits += 1
            cursor += 1
        }
        guard digits > 0 else { return .failure(.badTradeTime) }
        if cursor < line.count {
            switch line[cursor] {
            case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: " "), UInt8(ascii: "\t"): break
            default: return .failure(.badTradeTime)  // a fraction, an exponent, or junk
            }
        }
        return .success(Fields(symbol: symbolStart..<(symbolStart + symbolLength), timeMs: time))
    }

    /// The whole-number value of the one-letter key `key` (e.g. the trade id `"t"`), or nil when
    /// the key is missing or its value is not 1-18 decimal digits followed by `,`, `}` or a blank.
    static func integer(ofKey key: UInt8, in line: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard var cursor = valueStart(ofKey: key, in: line) else { return nil }
        var value: Int64 = 0
        var digits = 0
        while cursor < line.count, line[cursor] >= UInt8(ascii: "0"), line[cursor] <= UInt8(ascii: "9") {
            guard digits < 18 else { return nil }
            value = value * 10 + Int64(line[cursor] - UInt8(ascii: "0"))
            digits += 1
            cursor += 1
        }
        guard digits > 0 else { return nil }
        if cursor < line.count {
            switch line[cursor] {
            case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: " "), UInt8(ascii: "\t"): break
            default: return nil
            }
        }
        return value
    }

    /// Index of the first byte of the value of `"<key>"` (a one-letter key), past the colon and
    /// any blanks; nil when no such key is followed by a colon.
    private static func valueStart(ofKey key: UInt8, in line: UnsafeBufferPointer<UInt8>) -> Int? {
        let quote = UInt8(ascii: "\"")
        var index = 0
        while index + 2 < line.count {
            if line[index] == quote, line[index + 1] == key, line[index + 2] == quote {
                var cursor = skipBlanks(line, from: index + 3)
                if cursor < line.count, line[cursor] == UInt8(ascii: ":") {
                    cursor = skipBlanks(line, from: cursor + 1)
                    return cursor
                }
            }
            index += 1
        }
        return nil
    }

    private static func skipBlanks(_ line: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var index = start
        while index < line.count, line[index] == UInt8(ascii: " ") || line[index] == UInt8(ascii: "\t") { index += 1 }
        return index
    }
}
