import Foundation

/// A bearer token (the cluster token or the operator token) that never shows itself.
///
/// - Printing it in any way (`"\(token)"`, `String(describing:)`, `debugPrint`, `dump`, a log
///   line's metadata) gives `<redacted>`, so a token that ends up in a log message by mistake
///   still does not leak. Only `authorizationValue` gives the text, to put in a request header.
/// - Valid tokens are 16 to 4096 characters of the RFC 6750 token alphabet
///   (`A-Z a-z 0-9 - . _ ~ + / =`), which covers `openssl rand -hex 32` and `openssl rand -base64 32`;
///   anything else (spaces, control characters, non-ASCII) is refused with a message that names
///   where the token came from but never its content.
/// - `matches` compares in time independent of where the first difference is.
public struct SecretToken: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Shortest token accepted: short secrets can be guessed.
    public static let minimumLength = 16
    public static let maximumLength = 4096

    private let bytes: [UInt8]

    /// Checks and wraps `text`; `source` names where it came from ("VIGIL_CLUSTER_TOKEN",
    /// "/etc/vigil/cluster.token") for the error message.
    /// - Throws: `SecurityConfigError` saying what is wrong with the token, without its content.
    public init(_ text: String, source: String) throws(SecurityConfigError) {
        let bytes = Array(text.utf8)
        guard bytes.count >= Self.minimumLength else {
            throw SecurityConfigError(source: source, problem: "the token is \(bytes.count) characters long; use at least \(Self.minimumLength) (e.g. the output of `openssl rand -hex 32`)")
        }
        guard bytes.count <= Self.maximumLength else {
            throw SecurityConfigError(source: source, problem: "the token is longer than \(Self.maximumLength) characters; is this the right file?")
        }
        if let index = bytes.firstIndex(where: { !Self.isTokenByte($0) }) {
            throw SecurityConfigError(source: source, problem: "the token has a character outside A-Z a-z 0-9 - . _ ~ + / = at position \(index + 1); generate one with `openssl rand -hex 32`")
        }
        self.bytes = bytes
    }

    /// Reads a token from a file: the whole file, without leading and trailing whitespace (so a
    /// final newline does not matter).
    /// - Throws: `SecurityConfigError` naming `key` and the file when it cannot be read or holds no
    ///   valid token.
    public static func read(file path: String, key: String) throws(SecurityConfigError) -> SecretToken {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw SecurityConfigError(source: key, problem: "cannot read the token file \(path): \(Self.describe(error)); check the path and that this user may read it")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SecurityConfigError(source: key, problem: "the token file \(path) is not UTF-8 text; generate one with `openssl rand -hex 32 > \(path)`")
        }
        return try SecretToken(text.trimmingCharacters(in: .whitespacesAndNewlines), source: "\(key) (\(path))")
    }

    /// The value of an `authorization` request header carrying this token.
    public var authorizationValue: String {
        "Bearer " + String(decoding: bytes, as: UTF8.self)
    }

    /// True when `candidate` is this token. Takes the same time wherever the first difference
    /// is (a length difference is not hidden; the length is not the secret).
    public func matches<Bytes: Collection>(_ candidate: Bytes) -> Bool where Bytes.Element == UInt8 {
        guard candidate.count == bytes.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(bytes, candidate) {
            difference |= a ^ b
        }
        return difference == 0
    }

    public static func == (lhs: SecretToken, rhs: SecretToken) -> Bool {
        lhs.matches(rhs.bytes)
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "SecretToken(<redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    /// The RFC 6750 `b64token` alphabet.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="):
            true
        default:
            false
        }
    }

    static func describe(_ error: any Error) -> String {
        let ns = error as NSError
        if ns.domain == NSCocoaErrorDomain, let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code))).lowercased()
        }
        if ns.domain == NSCocoaErrorDomain && (ns.code == NSFileReadNoSuchFileError || ns.code == NSFileNoSuchFileError) {
            return "no such file"
        }
        if ns.domain == NSCocoaErrorDomain && ns.code == NSFileReadNoPermissionError {
            return "permission denied"
        }
        return ns.localizedDescription
    }
}

/// A `[security]` setting that cannot be used: names the setting (or environment variable, or
/// file) and what to do. Never contains a token.
public struct SecurityConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The setting, environment variable or file concerned (e.g. `security.tls_key`).
    public var source: String
    public var problem: String

    public init(source: String, problem: String) {
        self.source = source
        self.problem = problem
    }

    public var description: String { "\(source): \(problem)" }
}
