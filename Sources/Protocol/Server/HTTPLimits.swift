/// Limits a server enforces per connection and per request.
public struct HTTPLimits: Sendable, Equatable {
    /// Largest request body accepted. A larger one is answered with 413 (Payload Too Large): on
    /// HTTP/2 the stream is then reset with NO_ERROR so the client stops sending, and the
    /// connection keeps serving its other streams; on HTTP/1.1 the connection is closed after the
    /// 413, since the rest of the body cannot be skipped cheaply. A `content-length` above the
    /// limit is rejected before any of the body arrives. Default 64 MiB.
    public var maxBodyBytes: Int
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised to HTTP/2 clients: streams beyond it are
    /// refused (REFUSED_STREAM, which a client may retry). Default 128.
    public var maxConcurrentStreams: Int
    /// A connection with no request in progress and no traffic for this long is closed (HTTP/2
    /// with a GOAWAY first). Default 5 minutes.
    public var idleTimeout: Duration
    /// How long `HTTPServer.shutdown()` waits for in-flight requests before closing their
    /// connections anyway (their clients then see the connection close). Default 10 s.
    public var shutdownGracePeriod: Duration
    /// Largest header list of one request (names and values plus 32 bytes per field). A larger
    /// one is answered with 431 on HTTP/2 (NIO's HTTP/1.1 parser has its own limit of 80 KiB and
    /// closes the connection). Default 64 KiB.
    public var maxHeaderBytes: Int
    /// Connections open at once; one more is closed as soon as it is accepted (and counted as
    /// `too_many_connections`). Default 1024.
    public var maxConnections: Int
    /// On a TLS port, a connection whose handshake has not completed by then is closed (and
    /// counted as `tls_handshake`). Default 10 s.
    public var tlsHandshakeTimeout: Duration

    public init(
        maxBodyBytes: Int = 64 << 20, maxConcurrentStreams: Int = 128, idleTimeout: Duration = .seconds(300),
        shutdownGracePeriod: Duration = .seconds(10), maxHeaderBytes: Int = 64 << 10, maxConnections: Int = 1024,
        tlsHandshakeTimeout: Duration = .seconds(10)
    ) {
        self.maxBodyBytes = maxBodyBytes
        self.maxConcurrentStreams = maxConcurrentStreams
        self.idleTimeout = idleTimeout
        self.shutdownGracePeriod = shutdownGracePeriod
        self.maxHeaderBytes = maxHeaderBytes
        self.maxConnections = maxConnections
        self.tlsHandshakeTimeout = tlsHandshakeTimeout
    }
}

/// Counters of a running `HTTPServer`, as a snapshot (`HTTPServer.stats`). Monotonic since start.
public struct HTTPServerStats: Sendable, Equatable {
    /// Connections accepted.
    public var connections: Int = 0
    /// Connections that spoke HTTP/2 (prior knowledge), a subset of `connections`.
    public var http2Connections: Int = 0
    /// Requests handed to the handler (both protocols).
    public var requests: Int = 0
    /// Requests answered with 413 because their body exceeded `HTTPLimits.maxBodyBytes`.
    public var rejectedBodies: Int = 0
    /// Connections closed because the peer broke the protocol (bad preface, invalid frames).
    public var protocolErrors: Int = 0
    /// HTTP/2 requests answered with 431 because their headers exceeded `HTTPLimits.maxHeaderBytes`.
    public var rejectedHeaders: Int = 0
    /// Requests the handler refused when their headers arrived (`HTTPHandler.admit`), e.g. a
    /// missing or wrong token.
    public var refusedRequests: Int = 0
    /// Connections closed at once because `HTTPLimits.maxConnections` were open.
    public var refusedConnections: Int = 0
    /// Cleartext connections to a TLS port, closed.
    public var plaintextOnTLS: Int = 0
    /// TLS handshakes that failed (bad or missing certificate, unsupported version) or timed out.
    public var tlsHandshakeFailures: Int = 0

    public init() {}
}
