/// Why a record is not a trade.
///
/// Cheap to create (no heap storage), so rejecting a record costs no more than accepting one;
/// `reason` builds the one-line message for the operator only when it is asked for.
public struct TradeParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable, CaseIterable {
        /// No bytes, or only whitespace.
        case empty
        /// The record does not start with `{`.
        case notAnObject
        /// The record ends in the middle of the object.
        case truncated
        /// A byte that JSON does not allow where it stands.
        case unexpectedByte
        /// A required field (`s`, `p`, `q`, `T`) is absent.
        case missingField
        /// A known field appears twice (ambiguous: rejected rather than guessed).
        case duplicateField
        /// `p` or `q` is not a decimal (as a string or a number).
        case expectedDecimal
        /// `T`, `E` or `t` is not a JSON integer.
        case expectedInteger
        /// `m` is not `true` or `false`.
        case expectedBoolean
        /// `s` is not a string.
        case expectedString
        /// More than 18 significant digits, or an exponent outside what exchange data uses.
        case numberTooLarge
        /// `p` is zero or negative.
        case notPositive
        /// `q` is negative.
        case negative
        /// `s` is the empty string.
        case emptySymbol
        /// `s` is longer than `SymbolKey.maxLength` bytes.
        case symbolTooLong
        /// `s` holds a byte outside `[A-Za-z0-9_-]` (escapes included).
        case invalidSymbol
        /// A string with a bad escape or a raw control character.
        case invalidString
        /// A string whose bytes are not UTF-8 (JSON text must be).
        case invalidUTF8
        /// Something other than whitespace after the closing `}`.
        case trailingData
        /// Unknown fields nested deeper than `TradeParser.maxNesting`.
        case nestingTooDeep
    }

    public let code: Code
    /// The field concerned as its one-byte key (e.g. `UInt8(ascii: "p")`), or nil.
    public let field: UInt8?
    /// Byte offset in the record where the problem was found.
    public let position: Int
    /// The offending byte, for `unexpectedByte` and `invalidSymbol`.
    public let byte: UInt8?

    public init(_ code: Code, field: UInt8? = nil, position: Int, byte: UInt8? = nil) {
        self.code = code
        self.field = field
        self.position = position
        self.byte = byte
    }

    /// A short reason, e.g. "missing field T", "field p: expected decimal", "truncated".
    public var reason: String {
        let prefix = field.map { "field \(Character(Unicode.Scalar($0))): " } ?? ""
        switch code {
        case .empty: return "empty record"
        case .notAnObject: return "not an object"
        case .truncated: return "truncated"
        case .unexpectedByte: return "\(prefix)unexpected \(Self.show(byte)) at byte \(position)"
        case .missingField: return "missing field \(field.map { String(Character(Unicode.Scalar($0))) } ?? "?")"
        case .duplicateField: return "duplicate field \(field.map { String(Character(Unicode.Scalar($0))) } ?? "?")"
        case .expectedDecimal: return "\(prefix)expected decimal"
        case .expectedInteger: return "\(prefix)expected integer"
        case .expectedBoolean: return "\(prefix)expected true or false"
        case .expectedString: return "\(prefix)expected string"
        case .numberTooLarge: return "\(prefix)number too large"
        case .notPositive: return "\(prefix)must be > 0"
        case .negative: return "\(prefix)must be >= 0"
        case .emptySymbol: return "\(prefix)empty symbol"
        case .symbolTooLong: return "\(prefix)symbol longer than \(SymbolKey.maxLength) bytes"
        case .invalidSymbol: return "\(prefix)invalid symbol byte \(Self.show(byte)) (allowed: A-Z a-z 0-9 _ -)"
        case .invalidString: return "\(prefix)invalid string escape or control character at byte \(position)"
        case .invalidUTF8: return "\(prefix)invalid UTF-8 at byte \(position)"
        case .trailingData: return "trailing data after object"
        case .nestingTooDeep: return "nesting deeper than \(TradeParser.maxNesting)"
        }
    }

    public var description: String { reason }

    private static func show(_ byte: UInt8?) -> String {
        guard let byte else { return "end" }
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        let hex = String(byte, radix: 16, uppercase: true)
        return "byte 0x" + (hex.count == 1 ? "0" + hex : hex)
    }
}
