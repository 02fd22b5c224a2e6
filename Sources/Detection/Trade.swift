/// One trade, as `TradeParser` reads it from a record.
///
/// Self-contained (no pointer into the record it came from) and free of heap storage, so that
/// parsing a trade never allocates.
public struct Trade: Sendable, Equatable {
    /// The instrument, uppercased and validated (`[A-Z0-9_-]`, 1...32 bytes).
    public var symbol: SymbolKey
    /// Trade time `T` (ms since the epoch): the event time every window uses.
    public var eventTimeMs: Int64
    /// Price `p`; always finite and > 0.
    public var price: Double
    /// Base quantity `q`; always finite and >= 0.
    public var quantity: Double
    /// Exchange trade id `t`, when present.
    public var tradeID: Int64?
    /// `m`: true when the buyer was the maker (the taker sold). False when absent.
    public var buyerIsMaker: Bool
    /// Exchange event time `E` (ms), when present. Informational: windows use `eventTimeMs`.
    public var exchangeTimeMs: Int64?

    public init(
        symbol: SymbolKey, eventTimeMs: Int64, price: Double, quantity: Double,
        tradeID: Int64? = nil, buyerIsMaker: Bool = false, exchangeTimeMs: Int64? = nil
    ) {
        self.symbol = symbol
        self.eventTimeMs = eventTimeMs
        self.price = price
        self.quantity = quantity
        self.tradeID = tradeID
        self.buyerIsMaker = buyerIsMaker
        self.exchangeTimeMs = exchangeTimeMs
    }
}

/// A symbol held inline in 32 bytes plus a length: hashing and comparing it touches no heap,
/// so a trade's symbol can be looked up in a `SymbolTable` without creating a `String`.
///
/// Only uppercase letters, digits, `_` and `-` are allowed, 1 to 32 bytes; lowercase ASCII
/// letters are uppercased on the way in ("btcusdt" and "BTCUSDT" are the same symbol).
public struct SymbolKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Longest symbol accepted, in bytes.
    public static let maxLength = 32

    /// Why bytes are not a valid symbol.
    public enum Problem: Error, Sendable, Equatable {
        case empty
        case tooLong
        /// A byte outside `[A-Za-z0-9_-]`.
        case invalidByte(UInt8)
    }

    // The bytes, little-endian packed, zero-padded: equal keys have equal words.
    private var w0: UInt64 = 0
    private var w1: UInt64 = 0
    private var w2: UInt64 = 0
    private var w3: UInt64 = 0
    /// Length in bytes (1...32).
    public private(set) var count: Int = 0

    /// Validates and uppercases `bytes`; nil when they are not a valid symbol.
    public init?(_ bytes: some Collection<UInt8>) {
        guard case .success(let key) = SymbolKey.make(bytes) else { return nil }
        self = key
    }

    /// Validates and uppercases `string`'s UTF-8; nil when it is not a valid symbol.
    public init?(_ string: String) {
        self.init(Array(string.utf8))
    }

    private init() {}

    /// Validates and uppercases `bytes`, saying what is wrong when they are not a symbol.
    public static func make(_ bytes: some Collection<UInt8>) -> Result<SymbolKey, Problem> {
        let n = bytes.count
        if n == 0 { return .failure(.empty) }
        if n > maxLength { return .failure(.tooLong) }
        var key = SymbolKey()
        key.count = n
        var problem: Problem?
        var i = 0
        key.withWords { raw in
            for byte in bytes {
                guard let upper = SymbolKey.normalize(byte) else {
                    problem = .invalidByte(byte)
                    return
                }
                raw[i] = upper
                i += 1
            }
        }
        if let problem { return .failure(problem) }
        return .success(key)
    }

    /// Builds a key from `count` raw bytes at `base`; the parser's allocation-free path.
    @inline(__always)
    static func make(base: UnsafeRawPointer, count n: Int) -> Result<SymbolKey, Problem> {
        if n == 0 { return .failure(.empty) }
        if n > maxLength { return .failure(.tooLong) }
        var key = SymbolKey()
        key.count = n
        var bad: UInt8 = 0
        var ok = true
        key.withWords { raw in
            for i in 0..<n {
                let byte = base.load(fromByteOffset: i, as: UInt8.self)
                guard let upper = SymbolKey.normalize(byte) else {
                    bad = byte
                    ok = false
                    return
                }
                raw[i] = upper
            }
        }
        return ok ? .success(key) : .failure(.invalidByte(bad))
    }

    /// The uppercased byte if allowed in a symbol, else nil.
    @inline(__always)
    static func normalize(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"), UInt8(ascii: "-"):
            return byte
        case UInt8(ascii: "a")...UInt8(ascii: "z"):
            return byte - 32
        default:
            return nil
        }
    }

    @inline(__always)
    private mutating func withWords(_ body: (UnsafeMutableRawBufferPointer) -> Void) {
        var words = (w0, w1, w2, w3)
        withUnsafeMutableBytes(of: &words) { body($0) }
        (w0, w1, w2, w3) = words
    }

    /// Calls `body` with the symbol's bytes, without allocating.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var words = (w0, w1, w2, w3)
        let n = count
        let result: Result<R, E> = Swift.withUnsafeBytes(of: &words) { raw in
            Result { () throws(E) -> R in try body(UnsafeRawBufferPointer(rebasing: raw.prefix(n))) }
        }
        return try result.get()
    }

    /// The symbol's bytes.
    public var bytes: [UInt8] {
        var words = (w0, w1, w2, w3)
        let n = count
        return Swift.withUnsafeBytes(of: &words) { Array($0.prefix(n)) }
    }

    /// The symbol as a `String` (allocates: call once per symbol, not per trade).
    public var string: String {
        String(decoding: bytes, as: UTF8.self)
    }

    public var description: String { string }

    /// A cheap, well-mixed, process-independent hash of the bytes (for `SymbolTable`).
    @inline(__always)
    var mixedHash: UInt64 {
        var h = UInt64(truncatingIfNeeded: count) &* 0x9E37_79B9_7F4A_7C15
        h = (h ^ w0) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (h >> 29) ^ w1) &* 0x94D0_49BB_1331_11EB
        h = (h ^ (h >> 31) ^ w2) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (h >> 29) ^ w3) &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 32)
    }

    /// Orders by bytes (as strings compare for ASCII).
    public static func < (a: SymbolKey, b: SymbolKey) -> Bool {
        a.bytes.lexicographicallyPrecedes(b.bytes)
    }
}
