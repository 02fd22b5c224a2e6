/// Reads one text frame of Binance's combined stream without parsing more than it needs.
///
/// A combined-stream frame wraps the event: `{"stream":"btcusdt@trade","data":{"e":"trade",…}}`.
/// The trade is the `data` object, byte for byte; from it come the symbol `s` (the Kafka key),
/// the trade id `t` (for gap and duplicate checks) and the trade time `T`. A frame that is a bare
/// trade object (a raw `/ws/…` stream) is accepted as its own `data`.
///
/// Anything else is not produced: a frame without a `data` object that carries no trade (a
/// subscription reply such as `{"result":null,"id":1}`, or an error such as
/// `{"code":2,"msg":"Invalid request"}`) is `.notATrade`; a `data` object that lacks a usable
/// `s`, `t` or `T`, or a frame that is not a JSON object, is `.malformed`. Both carry a reason.
enum CombinedStreamFrame {
    struct Trade: Equatable {
        /// Range of the `data` object within the frame: the record value.
        var data: Range<Int>
        /// Range of the symbol's bytes within the frame: the record key.
        var symbol: Range<Int>
        var tradeId: Int64
        var timeMs: Int64
    }

    enum Outcome: Equatable {
        case trade(Trade)
        case notATrade(reason: String)
        case malformed(reason: String)
    }

    static func decode(_ frame: UnsafeBufferPointer<UInt8>) -> Outcome {
        let data: Range<Int>
        switch JSONObjectScanner.value(ofKey: "data", in: frame) {
        case .found(let range):
            guard frame[range.lowerBound] == UInt8(ascii: "{") else {
                return .malformed(reason: #""data" is not a JSON object"#)
            }
            data = range
        case .absent:
            // A raw stream sends the trade itself; anything else without "data" is a control reply.
            guard JSONObjectScanner.value(ofKey: "s", in: frame) != .absent,
                  JSONObjectScanner.value(ofKey: "T", in: frame) != .absent
            else {
                return .notATrade(reason: #"no "data" object (a subscription reply or an error from the server)"#)
            }
            data = 0..<frame.count
        case .notAnObject:
            return .malformed(reason: "not a JSON object")
        }
        let body = UnsafeBufferPointer(rebasing: frame[data])
        switch TradeFieldExtractor.extract(body) {
        case .failure(let failure):
            return .malformed(reason: failure.description)
        case .success(let fields):
            guard let tradeId = TradeFieldExtractor.integer(ofKey: UInt8(ascii: "t"), in: body) else {
                return .malformed(reason: #"no "t" (trade id) field that is a whole number"#)
            }
            let symbol = (data.lowerBound + fields.symbol.lowerBound)..<(data.lowerBound + fields.symbol.upperBound)
            return .trade(Trade(data: data, symbol: symbol, tradeId: tradeId, timeMs: fields.timeMs))
        }
    }
}

/// Finds the value of one key of a top-level JSON object, skipping nested values and strings
/// (with escapes) so that a key inside them is never mistaken for a top-level one.
enum JSONObjectScanner {
    enum Lookup: Equatable {
        /// The value's byte range (from its first to its last byte).
        case found(Range<Int>)
        case absent
        case notAnObject
    }

    static func value(ofKey key: StaticString, in text: UnsafeBufferPointer<UInt8>) -> Lookup {
        let wanted = UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        var index = skipBlanks(text, from: 0)
        guard index < text.count, text[index] == UInt8(ascii: "{") else { return .notAnObject }
        index += 1
        while true {
            index = skipBlanks(text, from: index)
            guard index < text.count else { return .notAnObject }
            if text[index] == UInt8(ascii: "}") { return .absent }
            guard text[index] == UInt8(ascii: "\""), let keyEnd = endOfString(text, from: index) else { return .notAnObject }
            let name = (index + 1)..<(keyEnd - 1)
            index = skipBlanks(text, from: keyEnd)
            guard index < text.count, text[index] == UInt8(ascii: ":") else { return .notAnObject }
            index = skipBlanks(text, from: index + 1)
            guard let valueEnd = endOfValue(text, from: index) else { return .notAnObject }
            if name.count == wanted.count, text[name].elementsEqual(wanted) { return .found(index..<valueEnd) }
            index = skipBlanks(text, from: valueEnd)
            guard index < text.count else { return .notAnObject }
            if text[index] == UInt8(ascii: ",") {
                index += 1
            } else if text[index] == UInt8(ascii: "}") {
                return .absent
            } else {
                return .notAnObject
            }
        }
    }

    /// One past the closing quote of the string that opens at `start`.
    private static func endOfString(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var index = start + 1
        while index < text.count {
            switch text[index] {
            case UInt8(ascii: "\\"): index += 2
            case UInt8(ascii: "\""): return index + 1
            default: index += 1
            }
        }
        return nil
    }

    /// One past the end of the value that starts at `start`: a string, an object or array
    /// (nesting counted outside strings), or a scalar up to the next delimiter.
    private static func endOfValue(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        guard start < text.count else { return nil }
        switch text[start] {
        case UInt8(ascii: "\""):
            return endOfString(text, from: start)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var index = start
            while index < text.count {
                switch text[index] {
                case UInt8(ascii: "\""):
                    guard let end = endOfString(text, from: index) else { return nil }
                    index = end
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return index + 1 }
                default:
                    break
                }
                index += 1
            }
            return nil
        default:
            var index = start
            while index < text.count {
                switch text[index] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: " "),
                     UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                    return index > start ? index : nil
                default:
                    index += 1
                }
            }
            return index > start ? index : nil
        }
    }

    private static func skipBlanks(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var index = start
        while index < text.count {
            switch text[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): index += 1
            default: return index
            }
        }
        return index
    }
}
