/// Which Kafka key a trade record is produced with: the bytes of its `"s"` value, as written.
///
/// Lenient on purpose, because it must also key records that are not valid trades (a bad
/// price still reaches Kafka, where the worker reports it as malformed with its offset): the
/// first `"s"` key followed by blanks and a colon, whose value is a string of 1 to 32 printable
/// ASCII bytes without escapes. This matches the rule `vigil ingest replay` keys records by,
/// so that `OfflineRunner` places every record where the cluster reads it from. Bytes are not
/// uppercased: producers should write symbols in one case (Binance writes uppercase).
public enum TradeKey {
    /// The byte range of the symbol inside `record`, or nil when there is no usable `"s"`.
    public static func symbolRange(in record: UnsafeRawBufferPointer) -> Range<Int>? {
        let quote = UInt8(ascii: "\"")
        let count = record.count
        var index = 0
        while index + 2 < count {
            if record[index] == quote, record[index + 1] == UInt8(ascii: "s"), record[index + 2] == quote {
                var cursor = skipBlanks(record, from: index + 3)
                if cursor < count, record[cursor] == UInt8(ascii: ":") {
                    cursor = skipBlanks(record, from: cursor + 1)
                    return stringValue(record, at: cursor)
                }
            }
            index += 1
        }
        return nil
    }

    private static func stringValue(_ record: UnsafeRawBufferPointer, at start: Int) -> Range<Int>? {
        guard start < record.count, record[start] == UInt8(ascii: "\"") else { return nil }
        var index = start + 1
        while index < record.count, record[index] != UInt8(ascii: "\"") {
            let byte = record[index]
            guard byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") else { return nil }
            index += 1
        }
        let length = index - (start + 1)
        guard index < record.count, length > 0, length <= SymbolKey.maxLength else { return nil }
        return (start + 1)..<index
    }

    private static func skipBlanks(_ record: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = start
        while index < record.count, record[index] == UInt8(ascii: " ") || record[index] == UInt8(ascii: "\t") {
            index += 1
        }
        return index
    }
}
