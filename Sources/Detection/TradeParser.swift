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
/// control characters, bytes that are not UTF-8 (in any string, skipped ones included) and
/// trailing bytes all fail with a `TradeParseError`. Keys written with escapes are treated as
/// unknown keys.
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

/// `10^n` for `0...22`, the powers of ten a `Double` holds exactly. A switch, not a global
/// array: no lazy-initialisation check or bounds check on the hot path.
@inline(__always)
private func powerOfTen(_ n: Int) -> Double {
    switch n {
    case 0: 1e0
    case 1: 1e1
    case 2: 1e2
    case 3: 1e3
    case 4: 1e4
    case 5: 1e5
    case 6: 1e6
    case 7: 1e7
    case 8: 1e8
    case 9: 1e9
    case 10: 1e10
    case 11: 1e11
    case 12: 1e12
    case 13: 1e13
    case 14: 1e14
    case 15: 1e15
    case 16: 1e16
    case 17: 1e17
    case 18: 1e18
    case 19: 1e19
    case 20: 1e20
    case 21: 1e21
    default: 1e22
    }
}

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
                if pos + 1 < end, byte(pos + 1) == UInt8(ascii: "\""), byte(pos) >= 0x20, byte(pos) < 0x80,
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
            } else if b < 0x80 {
                pos += 1
            } else {
                try skipUTF8Sequence()
            }
        }
        throw fail(.truncated)
    }

    /// Skips one multi-byte UTF-8 sequence starting at `pos` (a byte >= 0x80), refusing
    /// overlong forms, surrogates and code points above U+10FFFF (RFC 3629).
    mutating func skipUTF8Sequence() throws(TradeParseError) {
        let lead = byte(pos)
        let count: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: count = 1
        case 0xE0: count = 2; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: count = 2
        case 0xED: count = 2; high = 0x9F
        case 0xF0: count = 3; low = 0x90
        case 0xF1...0xF3: count = 3
        case 0xF4: count = 3; high = 0x8F
        default: throw fail(.invalidUTF8)
        }
        guard pos + count < end else { throw TradeParseError(.truncated, position: end) }
        for i in 1...count {
            let next = byte(pos + i)
            let (min, max) = i == 1 ? (low, high) : (UInt8(0x80), UInt8(0xBF))
            guard next >= min && next <= max else { throw TradeParseError(.invalidUTF8, position: pos + i) }
        }
        pos += count + 1
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

    /// Index of the first byte that is not `0` at or after `i`.
    @inline(__always)
    func zerosEnd(from i: Int) -> Int {
        var j = i
        while j < end, byte(j) == UInt8(ascii: "0") { j += 1 }
        return j
    }

    /// Scans the digits starting at `i`, accumulating them into `value`; returns the index of
    /// the first non-digit. Eight digits at a time where it can (SWAR, as simdjson does):
    /// timestamps and exchange decimals are 10 to 16 digits long. Callers bound the number of
    /// digits they accept (18), so the wrapping arithmetic never wraps on an accepted value.
    @inline(__always)
    func scanDigits(from i: Int, into value: inout UInt64) -> Int {
        var j = i
        while j + 8 <= end {
            let chunk = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: j, as: UInt64.self))
            // All eight bytes in 0x30...0x39?
            let high = chunk & 0xF0F0_F0F0_F0F0_F0F0
            let carried = ((chunk &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4
            guard high | carried == 0x3333_3333_3333_3333 else { break }
            var v = chunk &- 0x3030_3030_3030_3030
            v = (v &* 10) &+ (v >> 8)
            v = (((v & 0x0000_00FF_0000_00FF) &* 0x000F_4240_0000_0064)
                &+ (((v >> 16) & 0x0000_00FF_0000_00FF) &* 0x0000_2710_0000_0001)) >> 32
            value = value &* 100_000_000 &+ v
            j += 8
        }
        while j < end {
            let d = byte(j) &- UInt8(ascii: "0")
            if d >= 10 { break }
            value = value &* 10 &+ UInt64(d)
            j += 1
        }
        return j
    }

    /// A decimal, bare or quoted: `-?digits(.digits)?([eE][+-]?digits)?`.
    @inline(__always)
    mutating func parseDecimal(field: UInt8) throws(TradeParseError) -> Double {
        guard pos < end else { throw fail(.truncated) }
        let quoted = byte(pos) == UInt8(ascii: "\"")
        if quoted { pos += 1 }
        guard pos < end else { throw fail(.truncated) }
        let negative = byte(pos) == UInt8(ascii: "-")
        if negative { pos += 1 }

        // Leading zeros are not significant; everything after the first non-zero digit is.
        let integerStart = pos
        let integerSignificant = zerosEnd(from: integerStart)
        var mantissa: UInt64 = 0
        let integerEnd = scanDigits(from: integerSignificant, into: &mantissa)
        pos = integerEnd
        guard integerEnd > integerStart else { throw failHere(.expectedDecimal, field) }
        var significant = integerEnd - integerSignificant
        guard significant <= 18 else { throw fail(.numberTooLarge, field) }

        var fractionDigits = 0
        if pos < end, byte(pos) == UInt8(ascii: ".") {
            let fractionStart = pos + 1
            let fractionSignificant = significant == 0 ? zerosEnd(from: fractionStart) : fractionStart
            let fractionEnd = scanDigits(from: fractionSignificant, into: &mantissa)
            pos = fractionEnd
            fractionDigits = fractionEnd - fractionStart
            guard fractionDigits > 0 else { throw failHere(.expectedDecimal, field) }
            significant += fractionEnd - fractionSignificant
            guard significant <= 18 else { throw fail(.numberTooLarge, field) }
        }

        var exponent = 0
        if pos < end, byte(pos) | 0x20 == UInt8(ascii: "e") {
            pos += 1
            var exponentNegative = false
            if pos < end, byte(pos) == UInt8(ascii: "-") || byte(pos) == UInt8(ascii: "+") {
                exponentNegative = byte(pos) == UInt8(ascii: "-")
                pos += 1
            }
            var magnitude: UInt64 = 0
            let exponentEnd = scanDigits(from: pos, into: &magnitude)
            let exponentDigits = exponentEnd - pos
            pos = exponentEnd
            guard exponentDigits > 0 else { throw failHere(.expectedDecimal, field) }
            guard exponentDigits <= 4 else { throw fail(.numberTooLarge, field) }
            exponent = exponentNegative ? -Int(magnitude) : Int(magnitude)
        }
        if quoted {
            guard pos < end else { throw fail(.truncated) }
            guard byte(pos) == UInt8(ascii: "\"") else { throw fail(.expectedDecimal, field) }
            pos += 1
        }
        if mantissa == 0 { return 0 }
        let scale = exponent - fractionDigits
        guard scale >= -22, scale <= 22 else { throw fail(.numberTooLarge, field) }
        let magnitude = scale >= 0 ? Double(mantissa) * powerOfTen(scale) : Double(mantissa) / powerOfTen(-scale)
        return negative ? -magnitude : magnitude
    }

    /// A JSON integer of at most 18 digits.
    @inline(__always)
    mutating func parseInteger(field: UInt8) throws(TradeParseError) -> Int64 {
        guard pos < end else { throw fail(.truncated) }
        let negative = byte(pos) == UInt8(ascii: "-")
        if negative { pos += 1 }
        let digitsStart = pos
        var value: UInt64 = 0
        let digitsEnd = scanDigits(from: digitsStart, into: &value)
        pos = digitsEnd
        guard digitsEnd > digitsStart else { throw failHere(.expectedInteger, field) }
        guard digitsEnd - digitsStart <= 18 else { throw fail(.numberTooLarge, field) }
        if pos < end {
            switch byte(pos) {
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): throw fail(.expectedInteger, field)
            default: break
            }
        }
        return negative ? -Int64(value) : Int64(value)
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
