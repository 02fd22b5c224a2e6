import XCTest

@testable import Detection

final class TradeParserTests: XCTestCase {
    let sample = #"{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true}"#

    private func parseError(_ record: String, file: StaticString = #filePath, line: UInt = #line) -> TradeParseError? {
        do {
            let trade = try TradeParser.parse(record)
            XCTFail("parsed \(trade) from \(record)", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    private func assertFails(
        _ record: String, _ code: TradeParseError.Code, field: Character? = nil, reason: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        guard let error = parseError(record, file: file, line: line) else { return }
        XCTAssertEqual(error.code, code, "\(record): \(error.reason)", file: file, line: line)
        if let field {
            XCTAssertEqual(error.field, field.asciiValue, "\(record): \(error.reason)", file: file, line: line)
        }
        if let reason {
            XCTAssertEqual(error.reason, reason, file: file, line: line)
        }
    }

    /// `sample` with one field's value replaced (or the field removed when `value` is nil).
    private func with(_ key: String, _ value: String?) -> String {
        var fields = [
            ("e", #""trade""#), ("E", "1723161255343"), ("s", #""BTCUSDT""#), ("t", "3735683259"),
            ("p", #""61837.63000000""#), ("q", #""0.02000000""#), ("T", "1723161255342"), ("m", "true"),
        ]
        if let i = fields.firstIndex(where: { $0.0 == key }) {
            if let value { fields[i].1 = value } else { fields.remove(at: i) }
        } else if let value {
            fields.append((key, value))
        }
        return "{" + fields.map { #""\#($0.0)":\#($0.1)"# }.joined(separator: ",") + "}"
    }

    func testParsesBinanceTrade() throws {
        let trade = try TradeParser.parse(sample)
        XCTAssertEqual(trade.symbol.string, "BTCUSDT")
        XCTAssertEqual(trade.eventTimeMs, 1_723_161_255_342)
        XCTAssertEqual(trade.exchangeTimeMs, 1_723_161_255_343)
        XCTAssertEqual(trade.tradeID, 3_735_683_259)
        XCTAssertEqual(trade.price, 61837.63)
        XCTAssertEqual(trade.quantity, 0.02)
        XCTAssertTrue(trade.buyerIsMaker)
    }

    func testDecimalsAreExactForExchangeValues() throws {
        let cases: [(String, Double)] = [
            (#""0.1""#, 0.1), (#""61837.63000000""#, 61837.63), (#""2683.80000000""#, 2683.8),
            (#""0.00001000""#, 0.00001), ("61837.63", 61837.63), ("1e-3", 0.001), (#""6.183763E4""#, 61837.63),
            (#""000123.4500""#, 123.45), ("2", 2), (#""123456789012345678""#, Double(123_456_789_012_345_678 as Int64)),
        ]
        for (text, value) in cases {
            XCTAssertEqual(try TradeParser.parse(with("p", text)).price, value, text)
        }
        XCTAssertEqual(try TradeParser.parse(with("q", #""0""#)).quantity, 0, "zero quantity is allowed")
        XCTAssertEqual(try TradeParser.parse(with("q", #""-0""#)).quantity, 0)
    }

    func testAnyOrderWhitespaceUnknownFieldsAndOptionals() throws {
        let record = """
             {  "T" : 5 ,
            "q":1.5,"unknown":{"nested":[1,2,{"deep":"}]\\"{"}],"x":null},"flag":false,"n":-1.5e+3,
            "arr" : [ true , null, "a,b" ], "p"\t:\t"10", "s":"btc_usdt-1" }\r\n
            """
        let trade = try TradeParser.parse(record)
        XCTAssertEqual(trade.symbol.string, "BTC_USDT-1", "lowercase is uppercased")
        XCTAssertEqual(trade.eventTimeMs, 5)
        XCTAssertEqual(trade.price, 10)
        XCTAssertEqual(trade.quantity, 1.5)
        XCTAssertNil(trade.tradeID)
        XCTAssertNil(trade.exchangeTimeMs)
        XCTAssertFalse(trade.buyerIsMaker, "m defaults to false")
        XCTAssertEqual(try TradeParser.parse(#"{"s":"X","p":1,"q":1,"T":-20000}"#).eventTimeMs, -20_000)
    }

    func testEscapedStringsInUnknownFields() throws {
        let record = #"{"note":"say \"hi\" \\ \/ \b\f\n\r\t \u00e9 \uD83D\uDE00","s":"ETHUSDT","p":"1","q":"1","T":1}"#
        XCTAssertEqual(try TradeParser.parse(record).symbol.string, "ETHUSDT")
        assertFails(#"{"note":"bad \q escape","s":"ETHUSDT","p":"1","q":"1","T":1}"#, .invalidString)
        assertFails(#"{"note":"bad \u12G4","s":"ETHUSDT","p":"1","q":"1","T":1}"#, .invalidString)
        assertFails("{\"note\":\"raw \u{01} control\",\"s\":\"X\",\"p\":\"1\",\"q\":\"1\",\"T\":1}", .invalidString)
        assertFails(#"{"s":"BTC\u0055SDT","p":"1","q":"1","T":1}"#, .invalidSymbol, field: "s")
        assertFails(#"{"s":"BTC\"USDT","p":"1","q":"1","T":1}"#, .invalidSymbol, field: "s")
        // A key written with escapes is an unknown key: `s` is then missing.
        assertFails(#"{"\u0073":"BTCUSDT","p":"1","q":"1","T":1}"#, .missingField, field: "s", reason: "missing field s")
    }

    func testEmptyGarbageAndNotAnObject() {
        assertFails("", .empty, reason: "empty record")
        assertFails(" \n\t ", .empty)
        assertFails("garbage", .notAnObject, reason: "not an object")
        assertFails("[1,2]", .notAnObject)
        assertFails(#""BTCUSDT""#, .notAnObject)
        assertFails("\u{00}\u{ff}\u{fe}", .notAnObject)
        assertFails("{}", .missingField, field: "s")
        assertFails("{,}", .unexpectedByte)
        assertFails(#"{"s" "BTCUSDT"}"#, .unexpectedByte)
        assertFails(#"{"s":"BTCUSDT" "p":"1"}"#, .unexpectedByte)
        assertFails(#"{"x":nul,"s":"X","p":1,"q":1,"T":1}"#, .unexpectedByte)
        assertFails(#"{"x":@,"s":"X","p":1,"q":1,"T":1}"#, .unexpectedByte)
        assertFails(sample + " x", .trailingData, reason: "trailing data after object")
        assertFails(sample + sample, .trailingData)
        XCTAssertNoThrow(try TradeParser.parse(sample + " \r\n"))
    }

    func testEveryProperPrefixIsTruncated() {
        let bytes = Array(sample.utf8)
        for length in 1..<bytes.count {
            let prefix = Array(bytes[0..<length])
            XCTAssertThrowsError(try TradeParser.parse(prefix), "prefix \(length)") { error in
                XCTAssertEqual((error as? TradeParseError)?.code, .truncated, "prefix \(length): \(error)")
            }
        }
        XCTAssertEqual(parseError(#"{"s":"BTC"#)?.reason, "truncated")
        assertFails(#"{"x":"a\"#, .truncated)
        assertFails(#"{"x":"\u00"#, .truncated)
        assertFails(#"{"x":[{"y":[1,2"#, .truncated)
        assertFails(#"{"x":tru"#, .truncated)
    }

    func testDigitRunsOfEveryLength() throws {
        // Integers and decimals of 1 to 18 digits cross the eight-digits-at-a-time path at every
        // alignment; results must equal the standard library's correctly rounded conversions.
        var rng = SplitMix64(seed: 8)
        for length in 1...18 {
            for _ in 0..<50 {
                var digits = String(Int.random(in: 1...9, using: &rng))
                for _ in 1..<length { digits += String(Int.random(in: 0...9, using: &rng)) }
                let record = #"{"s":"A","p":"1","q":"1","T":\#(digits),"t":-\#(digits)}"#
                let trade = try TradeParser.parse(record)
                XCTAssertEqual(trade.eventTimeMs, Int64(digits), digits)
                XCTAssertEqual(trade.tradeID, -Int64(digits)!, digits)
                if length <= 15 {
                    let point = Int.random(in: 1...length, using: &rng)
                    let decimal = String(digits.prefix(point)) + (point < length ? "." + digits.dropFirst(point) : "")
                    XCTAssertEqual(try TradeParser.parse(#"{"s":"A","p":"\#(decimal)","q":1,"T":1}"#).price, Double(decimal), decimal)
                }
            }
        }
        // Bytes just outside '0'...'9' end a run wherever they fall in an eight-byte chunk.
        for neighbour in ["/", ":", "?", " "] {
            for at in 1...17 {
                let number = String(repeating: "7", count: at) + neighbour + "1"
                XCTAssertThrowsError(try TradeParser.parse(#"{"s":"A","p":1,"q":1,"T":\#(number)}"#), number)
            }
        }
    }

    func testMissingRequiredFields() {
        for key in ["s", "p", "q", "T"] {
            assertFails(with(key, nil), .missingField, field: Character(key), reason: "missing field \(key)")
        }
        XCTAssertNoThrow(try TradeParser.parse(with("t", nil)))
        XCTAssertNoThrow(try TradeParser.parse(with("m", nil)))
        XCTAssertNoThrow(try TradeParser.parse(with("E", nil)))
        XCTAssertNoThrow(try TradeParser.parse(with("e", nil)))
    }

    func testWrongTypes() {
        assertFails(with("p", "true"), .expectedDecimal, field: "p", reason: "field p: expected decimal")
        assertFails(with("p", #""abc""#), .expectedDecimal, field: "p")
        assertFails(with("p", #""NaN""#), .expectedDecimal, field: "p")
        assertFails(with("p", #""Infinity""#), .expectedDecimal, field: "p")
        assertFails(with("p", #""""#), .expectedDecimal, field: "p")
        assertFails(with("p", #"".5""#), .expectedDecimal, field: "p")
        assertFails(with("p", #""5.""#), .expectedDecimal, field: "p")
        assertFails(with("p", #""1e""#), .expectedDecimal, field: "p")
        assertFails(with("p", #""1.5 ""#), .expectedDecimal, field: "p")
        assertFails(with("p", "null"), .expectedDecimal, field: "p")
        assertFails(with("q", "[1]"), .expectedDecimal, field: "q")
        assertFails(with("T", #""1723161255342""#), .expectedInteger, field: "T", reason: "field T: expected integer")
        assertFails(with("T", "1.5"), .expectedInteger, field: "T")
        assertFails(with("T", "1e3"), .expectedInteger, field: "T")
        assertFails(with("E", "null"), .expectedInteger, field: "E")
        assertFails(with("t", "{}"), .expectedInteger, field: "t")
        assertFails(with("s", "123"), .expectedString, field: "s", reason: "field s: expected string")
        assertFails(with("s", "null"), .expectedString, field: "s")
        assertFails(with("m", "1"), .expectedBoolean, field: "m", reason: "field m: expected true or false")
        assertFails(with("m", #""true""#), .expectedBoolean, field: "m")
        assertFails(with("m", "trUe"), .expectedBoolean, field: "m")
    }

    func testHugeNumbers() {
        assertFails(with("p", #""1234567890123456789""#), .numberTooLarge, field: "p", reason: "field p: number too large")
        assertFails(with("p", #""1.234567890123456789""#), .numberTooLarge, field: "p")
        assertFails(with("q", "99999999999999999999999999999"), .numberTooLarge, field: "q")
        assertFails(with("p", "1e400"), .numberTooLarge, field: "p")
        assertFails(with("p", "1e23"), .numberTooLarge, field: "p")
        assertFails(with("p", "1e-30"), .numberTooLarge, field: "p")
        assertFails(with("p", "1e99999"), .numberTooLarge, field: "p")
        assertFails(with("T", "1234567890123456789"), .numberTooLarge, field: "T")
        assertFails(with("T", "-1234567890123456789"), .numberTooLarge, field: "T")
        assertFails(with("t", "99999999999999999999"), .numberTooLarge, field: "t")
        XCTAssertEqual(try TradeParser.parse(with("T", "999999999999999999")).eventTimeMs, 999_999_999_999_999_999)
        // Leading zeros are not significant digits.
        XCTAssertEqual(try TradeParser.parse(with("p", #""0.000000000000000000001""#)).price, 1e-21)
    }

    func testValueRanges() {
        assertFails(with("p", #""0""#), .notPositive, field: "p", reason: "field p: must be > 0")
        assertFails(with("p", #""0.00000000""#), .notPositive, field: "p")
        assertFails(with("p", #""-61837.63""#), .notPositive, field: "p")
        assertFails(with("q", #""-0.1""#), .negative, field: "q", reason: "field q: must be >= 0")
    }

    func testSymbols() throws {
        XCTAssertEqual(try TradeParser.parse(with("s", #""1000PEPEUSDT""#)).symbol.string, "1000PEPEUSDT")
        let longest = String(repeating: "A", count: 32)
        XCTAssertEqual(try TradeParser.parse(with("s", "\"\(longest)\"")).symbol.string, longest)
        assertFails(with("s", "\"\(longest)B\""), .symbolTooLong, field: "s", reason: "field s: symbol longer than 32 bytes")
        assertFails(with("s", "\"\(String(repeating: "A", count: 5000))"), .symbolTooLong, field: "s")
        assertFails(with("s", #""""#), .emptySymbol, field: "s")
        assertFails(with("s", #""BTC/USDT""#), .invalidSymbol, field: "s", reason: "field s: invalid symbol byte '/' (allowed: A-Z a-z 0-9 _ -)")
        assertFails(with("s", #""BTC USDT""#), .invalidSymbol, field: "s")
        assertFails(with("s", "\"BTC\u{e9}\""), .invalidSymbol, field: "s")
    }

    func testDuplicateKnownFieldsAreRejected() {
        assertFails(#"{"s":"A","p":"2","q":1,"T":1,"p":"1"}"#, .duplicateField, field: "p", reason: "duplicate field p")
        assertFails(#"{"s":"A","p":"2","q":1,"T":1,"s":"B"}"#, .duplicateField, field: "s")
        // Unknown keys may repeat.
        XCTAssertNoThrow(try TradeParser.parse(#"{"x":1,"x":2,"s":"A","p":1,"q":1,"T":1}"#))
    }

    func testNesting() {
        let deep = String(repeating: "[", count: TradeParser.maxNesting) + String(repeating: "]", count: TradeParser.maxNesting)
        XCTAssertNoThrow(try TradeParser.parse(#"{"x":\#(deep),"s":"A","p":1,"q":1,"T":1}"#))
        let tooDeep = String(repeating: "[", count: TradeParser.maxNesting + 1) + String(repeating: "]", count: TradeParser.maxNesting + 1)
        assertFails(#"{"x":\#(tooDeep),"s":"A","p":1,"q":1,"T":1}"#, .nestingTooDeep)
        assertFails(#"{"x":[1,2},"s":"A","p":1,"q":1,"T":1}"#, .unexpectedByte)
        assertFails(#"{"x":{"a":1],"s":"A","p":1,"q":1,"T":1}"#, .unexpectedByte)
        assertFails(#"{"s":"A","p":1,"q":1,"T":1,"x":{"#, .truncated)
    }

    func testRandomBytesNeverTrap() {
        var rng = SplitMix64(seed: 42)
        let base = Array(sample.utf8)
        let alphabet = Array(#"{}[]":,\"0123456789.eE-+ tfnu"#.utf8)
        for _ in 0..<20_000 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = alphabet.randomElement(using: &rng)!
                case 1: bytes.remove(at: i)
                default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: i)
                }
                if bytes.isEmpty { break }
            }
            if let trade = try? TradeParser.parse(bytes) {
                XCTAssertTrue(trade.price > 0 && trade.price.isFinite)
                XCTAssertTrue(trade.quantity >= 0 && trade.quantity.isFinite)
                XCTAssertTrue((1...32).contains(trade.symbol.count))
            }
        }
    }

    func testEveryRealLineParses() throws {
        for (name, expected) in [(RealData.spot, 34_419), (RealData.usdm, 35_389), (RealData.coinm, 8_830)] {
            let lines = try RealData.lines(name)
            XCTAssertEqual(lines.count, expected, name)
            var perSymbol: [String: Int] = [:]
            for (index, line) in lines.enumerated() {
                do {
                    let trade = try TradeParser.parse(line)
                    perSymbol[trade.symbol.string, default: 0] += 1
                } catch {
                    XCTFail("\(name) line \(index + 1): \(error.reason)")
                    return
                }
            }
            if name == RealData.spot {
                XCTAssertEqual(perSymbol, ["BTCUSDT": 19_904, "ETHUSDT": 14_515])
            }
        }
    }
}
