/// A WebSocket server address from a `ws://` or `wss://` URL: where to connect and whether to
/// use TLS. The path names the server's combined-stream endpoint (`/stream` when absent).
public struct WebSocketEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// Host name or IP address (an IPv6 address without brackets).
    public var host: String
    public var port: Int
    /// `wss://`: TLS (certificates checked against the trust roots); `ws://`: plain TCP.
    public var usesTLS: Bool
    /// The path of the stream endpoint, starting with "/".
    public var path: String

    /// Parses `url`: `ws[s]://host[:port][/path]`. The port defaults to 80 (ws) or 443 (wss);
    /// an empty path or "/" becomes "/stream".
    /// - Throws: `IngestError` `.invalidArgument` naming the URL and what was expected (a query
    ///   is refused: the stream list is built from the symbols).
    public init(url: String) throws(IngestError) {
        func invalid(_ why: String) -> IngestError {
            IngestError(.invalidArgument, "URL \"\(url)\": \(why); expected ws://HOST[:PORT][/PATH] or wss://HOST[:PORT][/PATH], e.g. wss://stream.binance.com:9443")
        }
        let rest: Substring
        if url.lowercased().hasPrefix("wss://") {
            usesTLS = true
            rest = url.dropFirst(6)
        } else if url.lowercased().hasPrefix("ws://") {
            usesTLS = false
            rest = url.dropFirst(5)
        } else {
            throw invalid("the scheme must be ws or wss")
        }
        guard !rest.contains("?"), !rest.contains("#") else {
            throw invalid("no query or fragment allowed (the streams are built from the symbols)")
        }
        let authority = rest.prefix { $0 != "/" }
        let pathPart = rest.dropFirst(authority.count)
        path = pathPart.isEmpty || pathPart == "/" ? "/stream" : String(pathPart)

        var hostPart = Substring(authority)
        var portText: Substring?
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else { throw invalid("unclosed [ in the IPv6 host") }
            let after = hostPart[hostPart.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { throw invalid("unexpected text after the IPv6 host") }
            hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
        } else if let colon = hostPart.lastIndex(of: ":") {
            portText = hostPart[hostPart.index(after: colon)...]
            hostPart = hostPart[..<colon]
        }
        guard !hostPart.isEmpty, !hostPart.contains("@") else { throw invalid("the host is missing (user info is not supported)") }
        host = String(hostPart)
        if let portText {
            guard let value = Int(portText), (1...65_535).contains(value) else { throw invalid("the port must be 1-65535") }
            port = value
        } else {
            port = usesTLS ? 443 : 80
        }
    }

    /// True when `host` is an IPv4 or IPv6 literal (TLS then sends no SNI name).
    var hostIsIPAddress: Bool {
        host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
    }

    /// The `Host` header: the port is left out when it is the scheme's default.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (usesTLS ? 443 : 80) ? name : "\(name):\(port)"
    }

    public var description: String {
        "\(usesTLS ? "wss" : "ws")://\(hostHeader)\(path)"
    }
}
