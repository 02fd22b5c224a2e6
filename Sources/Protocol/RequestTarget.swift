/// Splitting and building request targets (`/path?key=value&...`), shared by both server
/// pipelines (HTTP/2 and HTTP/1.1), the router and the client.
public enum RequestTarget {
    /// Splits a request target into its percent-decoded path and query parameters.
    ///
    /// - The path is everything before the first `?` (or `#`), percent-decoded; an empty path is `/`.
    /// - Query pairs are separated by `&` only; `+` means a space; a key
    ///   without `=` maps to the empty string; when a key repeats, the last value wins.
    /// - An invalid escape (`%zz`, a truncated `%4`) is kept literally rather than rejected, so a
    ///   sloppy client still reaches its route.
    public static func split(_ target: String) -> (path: String, query: [String: String]) {
        var pathPart = Substring(target)
        var queryPart: Substring = ""
        if let fragment = pathPart.firstIndex(of: "#") {
            pathPart = pathPart[..<fragment]
        }
        if let mark = pathPart.firstIndex(of: "?") {
            queryPart = pathPart[pathPart.index(after: mark)...]
            pathPart = pathPart[..<mark]
        }
        let path = pathPart.isEmpty ? "/" : percentDecode(pathPart, plusIsSpace: false)
        return (path, parseQuery(queryPart))
    }

    /// Parses `a=1&b=two%20words` into a dictionary (see `split` for the rules).
    public static func parseQuery(_ query: Substring) -> [String: String] {
        var result: [String: String] = [:]
        guard !query.isEmpty else { return result }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            if let eq = pair.firstIndex(of: "=") {
                let key = percentDecode(pair[..<eq], plusIsSpace: true)
                result[key] = percentDecode(pair[pair.index(after: eq)...], plusIsSpace: true)
            } else {
                result[percentDecode(pair, plusIsSpace: true)] = ""
            }
        }
        return result
    }

    /// Builds `path?k=v&...` with keys sorted (so a request is reproducible) and both keys and
    /// values percent-encoded; `path` is used as given.
    public static func build(path: String, query: [String: String]) -> String {
        guard !query.isEmpty else { return path }
        let pairs = query.sorted { $0.key < $1.key }.map { "\(percentEncode($0.key))=\(percentEncode($0.value))" }
        return path + "?" + pairs.joined(separator: "&")
    }

    /// Decodes `%XX` escapes (and `+` as a space when `plusIsSpace`); bytes that do not form
    /// valid UTF-8 after decoding are replaced with U+FFFD.
    public static func percentDecode<S: StringProtocol>(_ text: S, plusIsSpace: Bool) -> String {
        let utf8 = Array(text.utf8)
        guard utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) else {
            return String(text)
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var i = 0
        while i < utf8.count {
            let byte = utf8[i]
            if byte == UInt8(ascii: "%"), i + 2 < utf8.count,
               let high = hexValue(utf8[i + 1]), let low = hexValue(utf8[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else if plusIsSpace && byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
                i += 1
            } else {
                out.append(byte)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Encodes everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`).
    public static func percentEncode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
