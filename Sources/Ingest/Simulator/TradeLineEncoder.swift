/// Writes trades as Binance trade-stream JSON lines,
/// `{"e":"trade","E":<T+1>,"s":"BTCUSDT","t":<id>,"p":"61837.63","q":"0.02000","T":<T>,"m":true}`,
/// without a trailing newline, straight into a reusable byte buffer (no `String`, no allocation
/// once the buffer has grown to a line's size).
struct TradeLineEncoder: Sendable {
    /// `,"s":"<SYMBOL>","t":`, precomputed.
    private let symbolField: [UInt8]
    /// Where the symbol sits inside `symbolField`.
    private let symbolOffset = 6
    private let symbolLength: Int
    private let priceDecimals: Int
    private let quantityDecimals: Int

    /// The longest possible line: fixed parts, a 32-byte symbol and five 20-digit numbers.
    static let maximumLineLength = 256

    init(symbol: String, priceDecimals: Int, quantityDecimals: Int) {
        symbolField = Array(#","s":""#.utf8) + Array(symbol.utf8) + Array(#"","t":"#.utf8)
        symbolLength = symbol.utf8.count
        self.priceDecimals = priceDecimals
        self.quantityDecimals = quantityDecimals
    }

    /// Replaces the contents of `line` with one trade and returns the range of the symbol in it
    /// (the Kafka key). `priceUnits` and `quantityUnits` count ticks and steps.
    func write(
        into line: inout [UInt8], tradeTimeMs: Int64, tradeID: UInt64,
        priceUnits: UInt64, quantityUnits: UInt64, buyerIsMaker: Bool
    ) -> Range<Int> {
        line.removeAll(keepingCapacity: true)
        var keyStart = 0
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.maximumLineLength) { scratch in
            var out = ByteWriter(base: scratch.baseAddress!)
            out.write(#"{"e":"trade","E":"#)
            out.writeDecimal(UInt64(tradeTimeMs + 1))
            keyStart = out.count + symbolOffset
            symbolField.withUnsafeBufferPointer { out.write($0) }
            out.writeDecimal(tradeID)
            out.write(#","p":""#)
            out.writeFixed(priceUnits, decimals: priceDecimals)
            out.write(#"","q":""#)
            out.writeFixed(quantityUnits, decimals: quantityDecimals)
            out.write(#"","T":"#)
            out.writeDecimal(UInt64(tradeTimeMs))
            out.write(buyerIsMaker ? #","m":true}"# : #","m":false}"#)
            line.append(contentsOf: UnsafeBufferPointer(start: scratch.baseAddress, count: out.count))
        }
        return keyStart..<(keyStart + symbolLength)
    }
}

/// Appends ASCII to raw memory that the caller sized for the longest output.
struct ByteWriter {
    let base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0

    init(base: UnsafeMutablePointer<UInt8>) { self.base = base }

    mutating func write(_ text: StaticString) {
        (base + count).update(from: text.utf8Start, count: text.utf8CodeUnitCount)
        count += text.utf8CodeUnitCount
    }

    mutating func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        (base + count).update(from: source, count: bytes.count)
        count += bytes.count
    }

    mutating func writeDecimal(_ value: UInt64) {
        var digits = 1
        var probe = value
        while probe >= 10 { probe /= 10; digits += 1 }
        writeDigits(value, width: digits)
    }

    /// `units / 10^decimals` with exactly `decimals` fraction digits (`5700, 4` → `0.5700`).
    mutating func writeFixed(_ units: UInt64, decimals: Int) {
        guard decimals > 0 else { return writeDecimal(units) }
        var scale: UInt64 = 1
        for _ in 0..<decimals { scale *= 10 }
        writeDecimal(units / scale)
        base[count] = UInt8(ascii: ".")
        count += 1
        writeDigits(units % scale, width: decimals)
    }

    /// Exactly `width` digits, zero-padded on the left.
    private mutating func writeDigits(_ value: UInt64, width: Int) {
        var rest = value
        var position = count + width - 1
        while position >= count {
            base[position] = UInt8(truncatingIfNeeded: rest % 10) &+ UInt8(ascii: "0")
            rest /= 10
            position -= 1
        }
        count += width
    }
}
