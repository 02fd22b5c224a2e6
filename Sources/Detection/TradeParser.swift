/// Reads one Binance trade JSON object straight from a record's bytes.
///
/// ```
/// {"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true}
/// ```
/// Fields may come in any order with any JSON whitespace; unknown fields are skipped (nested
/// objects and arrays included, up to `maxNesting` deep). Required: `s`, `p`, `q`, `T`.
/// Optional: `t`, `m` (false when absent), `E`. `p` and `q` may be strings or numbers;
/// `T`, `E`, `t` must be JSON integers.
///
/// Strict on purpose, since a malformed trade is recorded rather than guessed at: duplicate
/// known fields, more than 18 significant digits, exponents that put a value outside
/// 10^-22...10^22 scaling, a non-positive price, a negative quantity, a symbol that is not
/// 1...32 bytes of `[A-Za-z0-9_-]` (escapes are not decoded in `s`), bad string escapes, raw
/// control characters and trailing bytes all fail with a `TradeParseError`. Keys written with
/// escapes are treated as unknown keys.
///
/// Decimals are `Double(mantissa) / 10^fractionDigits`, which is the correctly rounded value
/// for exchange prices and quantities (mantissa < 2^53). Never allocates, never traps.
public enum TradeParser {
    /// Deepest nesting of unknown values that is skipped; deeper is an error.
    public static let maxNesting = 64

    /// Parses one record. Throws a `TradeParseError` saying what is wrong.
    public static func parse(_ record: UnsafeRawBufferPointer) throws(TradeParseError) -> Trade {
        guard let base = record.baseAddress, record.count > 0 else {
            throw TradeParseError(.empty, position: 0)
        }
        var scanner = TradeScanner(base: base, end: record.count)
        return try scanner.parseTrade()
    }

    /// Parses one record held in an array (tests, tools). Same rules as the pointer form.
    public static func parse(_ record: [UInt8]) throws(TradeParseError) -> Trade {
        let result = record.withUnsafeBytes { buffer in
            Result { () throws(TradeParseError) -> Trade in try parse(buffer) }
        }
        return try result.get()
    }

    /// Parses one record held in a string (tests, tools).
    public static func parse(_ record: String) throws(TradeParseError) -> Trade {
        try parse(Array(record.utf8))
    }
}

private enum Field {
    static let s = UInt8(ascii: "s")
    static let p = UInt8(ascii: "p")
    static let q = UInt8(ascii: "q")
    static let tradeTime = UInt8(ascii: "T")
    static let tradeID = UInt8(ascii: "t")
    static let maker = UInt8(ascii: "m")
    static let eventTime = UInt8(ascii: "E")

    static func bit(_ key: UInt8) -> UInt8 {
        switch key {
        case s: 1
        case p: 2
        case q: 4
        case tradeTime: 8
        case tradeID: 16
        case maker: 32
        case eventTime: 64
        default: 0
        }
    }
}

/// Exact powers of ten representable as `Double`.
private let powersOfTen: [Double] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]

private struct TradeScanner {
    let base: UnsafeRawPointer
    let end: Int
    var pos = 0

    init(base: UnsafeRawPointer, end: Int) {
        self.base = base
        self.end = end
    }

    @inline(__always)
    func byte(_ index: Int) -> UInt8 {
        base.load(fromByteOffset: index, as: UInt8.self)
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while pos < end {
            switch byte(pos) {
            case 0x20, 0x0A, 0x0D, 0x09: pos += 1
            default: return
            }
        }
    }

    @inline(__always)
    func fail(_ code: TradeParseError.Code, _ field: UInt8? = nil) -> TradeParseError {
        TradeParseError(code, field: field, position: pos)
    }

    /// `truncated` at the end of input, else `code` (or an unexpected-byte error).
    @inline(__always)
    func failHere(_ code: TradeParseError.Code, _ field: UInt8? = nil) -> TradeParseError {
        if pos >= end { return TradeParseError(.truncated, field: field, position: pos) }
        if code == .unexpectedByte { return TradeParseError(.unexpectedByte, field: field, position: pos, byte: byte(pos)) }
        return TradeParseError(code, field: field, position: pos)
    }

    mutating func parseTrade() throws(TradeParseError) -> Trade {
        skipWhitespace()
        guard pos < end else { throw fail(.empty) }
        guard byte(pos) == UInt8(ascii: "{") else { throw fail(.notAnObject) }
        pos += 1

        var seen: UInt8 = 0
        var symbol = Result<SymbolKey, TradeParseError>.failure(TradeParseError(.missingField, field: Field.s, position: 0))
        var price = 0.0
        var quantity = 0.0
        var tradeTime: Int64 = 0
        var tradeID: Int64?
        var maker = false
        var eventTime: Int64?

        skipWhitespace()
        guard pos < end else { throw fail(.truncated) }
        if byte(pos) == UInt8(ascii: "}") {
            pos += 1
        } else {
            members: while true {
                guard pos < end else { throw fail(.truncated) }
                guard byte(pos) == UInt8(ascii: "\"") else { throw failHere(.unexpectedByte) }
                pos += 1
                var key: UInt8 = 0
                if pos + 1 < end, byte(pos + 1) == UInt8(ascii: "\""), byte(pos) >= 0x20,
                    byte(pos) != UInt8(ascii: "\\"), byte(pos) != UInt8(ascii: "\"")
                {
                    key = byte(pos)
                    pos += 2
                } else {
                    try skipStringBody()
                }
                skipWhitespace()
                guard pos < end, byte(pos) == UInt8(ascii: ":") else { throw failHere(.unexpectedByte) }
                pos += 1
                skipWhitespace()

                let bit = Field.bit(key)
                if bit != 0 {
                    if seen & bit != 0 { throw TradeParseError(.duplicateField, field: key, position: pos) }
                    seen |= bit
                }
                switch key {
                case Field.s: symbol = .success(try parseSymbol())
                case Field.p:
                    price = try parseDecimal(field: key)
                    if !(price > 0) { throw TradeParseError(.notPositive, field: key, position: pos) }
                case Field.q:
                    quantity = try parseDecimal(field: key)
                    if quantity < 0 { throw TradeParseError(.negative, field: key, position: pos) }
                case Field.tradeTime: tradeTime = try parseInteger(field: key)
                case Field.tradeID: tradeID = try parseInteger(field: key)
                case Field.eventTime: eventTime = try parseInteger(field: key)
                case Field.maker: maker = try parseBoolean(field: key)
                default: try skipValue()
                }

                skipWhitespace()
                guard pos < end else { throw fail(.truncated) }
                switch byte(pos) {
                case UInt8(ascii: ","):
                    pos += 1
                    skipWhitespace()
                case UInt8(ascii: "}"):
                    pos += 1
                    break members
                default:
                    throw failHere(.unexpectedByte)
                }
            }
        }
        skipWhitespace()
        guard pos == end else { throw fail(.trailingData) }

        // Checked one by one (no array literal: this path must not allocate).
        if seen & Field.bit(Field.s) == 0 { throw TradeParseError(.missingField, field: Field.s, position: pos) }
        if seen & Field.bit(Field.p) == 0 { throw TradeParseError(.missingField, field: Field.p, position: pos) }
        if seen & Field.bit(Field.q) == 0 { throw TradeParseError(.missingField, field: Field.q, position: pos) }
        if seen & Field.bit(Field.tradeTime) == 0 {
            throw TradeParseError(.missingField, field: Field.tradeTime, position: pos)
        }
        return Trade(
            symbol: try symbol.get(), eventTimeMs: tradeTime, price: price, quantity: quantity,
            tradeID: tradeID, buyerIsMaker: maker, exchangeTimeMs: eventTime)
    }

    /// Skips a string whose opening quote is consumed; leaves `pos` after the closing quote.
    mutating func skipStringBody() throws(TradeParseError) {
        while pos < end {
            let b = byte(pos)
            if b == UInt8(ascii: "\"") {
                pos += 1
                return
            }
            if b == UInt8(ascii: "\\") {
                guard pos + 1 < end else { throw TradeParseError(.truncated, position: end) }
                switch byte(pos + 1) {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                    UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    pos += 2
                case UInt8(ascii: "u"):
                    guard pos + 6 <= end else { throw TradeParseError(.truncated, position: end) }
                    for i in 2..<6 where !Self.isHexDigit(byte(pos + i)) {
                        throw TradeParseError(.invalidString, position: pos)
                    }
                    pos += 6
                default:
                    throw fail(.invalidString)
                }
            } else if b < 0x20 {
                throw fail(.invalidString)
            } else {
                pos += 1
            }
        }
        throw fail(.truncated)
    }

    static func isHexDigit(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
            UInt8(ascii: "A")...UInt8(ascii: "F"):
            true
        default:
            false
        }
    }

    /// Skips any JSON value; containers are matched bracket for bracket, strings skipped whole.
    mutating func skipValue() throws(TradeParseError) {
        guard pos < end else { throw fail(.truncated) }
        switch byte(pos) {
        case UInt8(ascii: "\""):
            pos += 1
            try skipStringBody()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            try skipContainer()
        case UInt8(ascii: "t"): try skipLiteral("true")
        case UInt8(ascii: "f"): try skipLiteral("false")
        case UInt8(ascii: "n"): try skipLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            pos += 1
            while pos < end {
                switch byte(pos) {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "e"),
                    UInt8(ascii: "E"), UInt8(ascii: "+"), UInt8(ascii: "-"):
                    pos += 1
                default:
                    return
                }
            }
        default:
            throw failHere(.unexpectedByte)
        }
    }

    mutating func skipLiteral(_ literal: StaticString) throws(TradeParseError) {
        let n = literal.utf8CodeUnitCount
        let bytes = literal.utf8Start
        for i in 0..<n {
            guard pos < end else { throw fail(.truncated) }
            guard byte(pos) == bytes[i] else { throw failHere(.unexpectedByte) }
            pos += 1
        }
    }

    /// Skips an object or array starting at `pos`, tracking the kind of each open bracket in a
    /// bit stack (1 = object) so that `[}` is an error; deeper than `maxNesting` fails.
    mutating func skipContainer() throws(TradeParseError) {
        var depth = 0
        var stack: UInt64 = 0
        while pos < end {
            let b = byte(pos)
            switch b {
            case UInt8(ascii: "\""):
                pos += 1
                try skipStringBody()
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth < TradeParser.maxNesting else { throw fail(.nestingTooDeep) }
                stack = (stack << 1) | (b == UInt8(ascii: "{") ? 1 : 0)
                depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                let openIsObject = stack & 1 == 1
                guard openIsObject == (b == UInt8(ascii: "}")) else { throw failHere(.unexpectedByte) }
                stack >>= 1
                depth -= 1
                if depth == 0 {
                    pos += 1
                    return
                }
            default:
                break
            }
            pos += 1
        }
        throw fail(.truncated)
    }

    mutating func parseSymbol() throws(TradeParseError) -> SymbolKey {
        guard pos < end else { throw fail(.truncated) }
        guard byte(pos) == UInt8(ascii: "\"") else { throw fail(.expectedString, Field.s) }
        pos += 1
        let start = pos
        while pos < end, byte(pos) != UInt8(ascii: "\"") {
            if pos - start >= SymbolKey.maxLength { throw TradeParseError(.symbolTooLong, field: Field.s, position: start) }
            pos += 1
        }
        guard pos < end else { throw fail(.truncated) }
        let count = pos - start
        pos += 1
        switch SymbolKey.make(base: base + start, count: count) {
        case .success(let key):
            return key
        case .failure(.empty):
            throw TradeParseError(.emptySymbol, field: Field.s, position: start)
        case .failure(.tooLong):
            throw TradeParseError(.symbolTooLong, field: Field.s, position: start)
        case .failure(.invalidByte(let b)):
            throw TradeParseError(.invalidSymbol, field: Field.s, position: start, byte: b)
        }
    }

    @inline(__always)
    mutating func digit() -> UInt64? {
        guard pos < end else { return nil }
        let d = byte(pos) &- UInt8(ascii: "0")
        return d < 10 ? UInt64(d) : nil
    }

    /// A decimal, bare or quoted: `-?digits(.digits)?([eE][+-]?digits)?`.
    mutating func parseDecimal(field: UInt8) throws(TradeParseError) -> Double {
        guard pos < end else { throw fail(.truncated) }
        let quoted = byte(pos) == UInt8(ascii: "\"")
        if quoted { pos += 1 }
        guard pos < end else { throw fail(.truncated) }
        var negative = false
        if byte(pos) == UInt8(ascii: "-") {
            negative = true
            pos += 1
        }
        var mantissa: UInt64 = 0
        var significant = 0
        var fractionDigits = 0
        var integerDigits = 0
        while let d = digit() {
            if mantissa != 0 || d != 0 {
                significant += 1
                guard significant <= 18 else { throw fail(.numberTooLarge, field) }
                mantissa = mantissa * 10 + d
            }
            integerDigits += 1
            pos += 1
        }
        guard integerDigits > 0 else { throw failHere(.expectedDecimal, field) }
        if pos < end, byte(pos) == UInt8(ascii: ".") {
            pos += 1
            while let d = digit() {
                if mantissa != 0 || d != 0 {
                    significant += 1
                    guard significant <= 18 else { throw fail(.numberTooLarge, field) }
                    mantissa = mantissa * 10 + d
                }
                fractionDigits += 1
                pos += 1
            }
            guard fractionDigits > 0 else { throw failHere(.expectedDecimal, field) }
        }
        var exponent = 0
        if pos < end, byte(pos) | 0x20 == UInt8(ascii: "e") {
            pos += 1
            var exponentNegative = false
            if pos < end, byte(pos) == UInt8(ascii: "-") || byte(pos) == UInt8(ascii: "+") {
                exponentNegative = byte(pos) == UInt8(ascii: "-")
                pos += 1
            }
            var exponentDigits = 0
            while let d = digit() {
                exponentDigits += 1
                guard exponentDigits <= 4 else { throw fail(.numberTooLarge, field) }
                exponent = exponent * 10 + Int(d)
                pos += 1
            }
            guard exponentDigits > 0 else { throw failHere(.expectedDecimal, field) }
            if exponentNegative { exponent = -exponent }
        }
        if quoted {
            guard pos < end else { throw fail(.truncated) }
            guard byte(pos) == UInt8(ascii: "\"") else { throw fail(.expectedDecimal, field) }
            pos += 1
        }
        if mantissa == 0 { return 0 }
        let scale = exponent - fractionDigits
        guard scale >= -22, scale <= 22 else { throw fail(.numberTooLarge, field) }
        let magnitude = scale >= 0 ? Double(mantissa) * powersOfTen[scale] : Double(mantissa) / powersOfTen[-scale]
        return negative ? -magnitude : magnitude
    }

    /// A JSON integer of at most 18 digits.
    mutating func parseInteger(field: UInt8) throws(TradeParseError) -> Int64 {
        guard pos < end else { throw fail(.truncated) }
        var negative = false
        if byte(pos) == UInt8(ascii: "-") {
            negative = true
            pos += 1
        }
        var value: Int64 = 0
        var digits = 0
        while let d = digit() {
            digits += 1
            guard digits <= 18 else { throw fail(.numberTooLarge, field) }
            value = value * 10 + Int64(d)
            pos += 1
        }
        guard digits > 0 else { throw failHere(.expectedInteger, field) }
        if pos < end {
            switch byte(pos) {
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): throw fail(.expectedInteger, field)
            default: break
            }
        }
        return negative ? -value : value
    }

    mutating func parseBoolean(field: UInt8) throws(TradeParseError) -> Bool {
        guard pos < end else { throw fail(.truncated) }
        let literal: StaticString
        switch byte(pos) {
        case UInt8(ascii: "t"): literal = "true"
        case UInt8(ascii: "f"): literal = "false"
        default: throw fail(.expectedBoolean, field)
        }
        do {
            try skipLiteral(literal)
        } catch where error.code == .unexpectedByte {
            throw TradeParseError(.expectedBoolean, field: field, position: pos)
        }
        return literal.utf8CodeUnitCount == 4
    }
}
