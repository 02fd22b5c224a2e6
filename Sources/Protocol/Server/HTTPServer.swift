import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// An HTTP server on one TCP port that speaks HTTP/2 with prior knowledge (cleartext, through
/// libnghttp2; what `RPCClient`, `curl --http2-prior-knowledge` and `nghttp` use) and HTTP/1.1
/// (browsers, plain `curl`) on the same port, serving both through one `HTTPHandler`.
///
/// With `tls`, the port speaks TLS only (ALPN `h2` or `http/1.1`, then the same sniffing): a
/// cleartext client is refused with a log line and the `plaintext_on_tls` counter (see
/// `TLSPlaintextGuard`), a failed or stalled handshake likewise (`tls_handshake`). The handler's
/// `admit` is asked about every request when its headers arrive (see `HTTPHandler.admit`).
/// `HTTPLimits` bounds bodies, headers, streams, connections, idle time and handshakes; what is
/// refused is counted in `stats` and, with a registry, in `vigil_http_rejected_total`.
///
/// Lifecycle: `start()` binds and returns the port; `shutdown()` stops accepting, lets requests in
/// progress finish for up to `HTTPLimits.shutdownGracePeriod`, then closes every connection. For
/// swift-service-lifecycle, run `run()` inside `withGracefulShutdownHandler` and call `shutdown()`
/// from its handler. A server is started at most once.
public final class HTTPServer: Sendable {
    public let host: String
    /// The port asked for (0 = any free port; see `localPort` for the one bound).
    public let port: Int
    public let limits: HTTPLimits
    /// TLS settings; nil serves cleartext.
    public let tls: ServerTLS?
    private let handler: any HTTPHandler
    private let logger: Logger
    private let group: any EventLoopGroup
    private let state = Locked(State())
    private let counters = Locked(HTTPServerStats())
    private let rejections: RejectionCounters

    private struct State {
        var listener: (any Channel)?
        var boundPort: Int?
        var started = false
        var stopping = false
        var connections: [ObjectIdentifier: any Channel] = [:]
    }

    /// - Parameters:
    ///   - tls: serve TLS only, with these settings; nil (the default) serves cleartext.
    ///   - rejections: where refused requests and connections are counted by reason (the
    ///     coordinator passes its Prometheus registry); `.disabled` counts only in `stats`.
    public init(
        host: String, port: Int, handler: any HTTPHandler, limits: HTTPLimits = .init(), tls: ServerTLS? = nil,
        rejections: RejectionCounters = .disabled, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.host = host
        self.port = port
        self.handler = handler
        self.limits = limits
        self.tls = tls
        self.rejections = rejections
        self.logger = logger
        self.group = group
    }

    /// Binds and returns the bound port (port 0 = ephemeral).
    /// - Throws: `HTTPServerError` naming host:port when the bind fails (port in use, no such
    ///   address, no permission) or when the server was already started.
    @discardableResult
    public func start() async throws -> Int {
        try state.withLock { state in
            guard !state.started else { throw HTTPServerError(host: host, port: port, reason: .alreadyStarted) }
            state.started = true
        }
        let limits = self.limits
        let handler = self.handler
        let logger = self.logger
        let counters = self.counters
        let state = self.state
        let tls = self.tls
        let rejections = self.rejections
        let log = ThrottledLog(logger: logger)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.accept(channel, limits: limits, state: state, counters: counters, rejections: rejections, log: log)
                    let pipeline = channel.pipeline.syncOperations
                    if let tls {
                        try pipeline.addHandler(TLSPlaintextGuard(stats: counters, rejections: rejections, log: log))
                        try pipeline.addHandler(NIOSSLServerHandler(context: tls.context))
                        try pipeline.addHandler(TLSHandshakeWatch(timeout: limits.tlsHandshakeTimeout, stats: counters, rejections: rejections, log: log, logger: logger))
                    }
                    try pipeline.addHandler(IdleStateHandler(allTimeout: TimeAmount(limits.idleTimeout)))
                    try pipeline.addHandler(ProtocolSniffer(handler: handler, limits: limits, stats: counters, rejections: rejections, logger: logger))
                }
            }
        let listener: any Channel
        do {
            listener = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw HTTPServerError(host: host, port: port, reason: .bindFailed(HTTPServerError.describe(error)))
        }
        let bound = listener.localAddress?.port ?? port
        state.withLock {
            $0.listener = listener
            $0.boundPort = bound
        }
        logger.info("HTTP server listening", metadata: [
            "address": "\(host):\(bound)",
            "tls": "\(tls.map { $0.requiresClientCertificate ? "on, client certificate required" : ($0.verifiesClientCertificates ? "on, client certificates verified when presented" : "on") } ?? "off")",
        ])
        return bound
    }

    /// The bound port once `start()` returned; nil before.
    public var localPort: Int? {
        state.withLock { $0.boundPort }
    }

    /// Counters since start (connections, requests, bodies rejected with 413, protocol errors).
    public var stats: HTTPServerStats {
        counters.withLock { $0 }
    }

    /// Starts the server if needed and returns once it has been shut down.
    public func run() async throws {
        let listener = state.withLock { $0.listener }
        if listener == nil {
            try await start()
        }
        try await state.withLock { $0.listener }?.closeFuture.get()
    }

    /// Stops accepting, lets in-flight requests finish (for at most
    /// `HTTPLimits.shutdownGracePeriod`; HTTP/2 clients get a GOAWAY, HTTP/1.1 connections close
    /// after their current response), then closes the remaining connections. Returns when every
    /// connection is closed. Calling it again, or before `start()`, does nothing more.
    public func shutdown() async {
        let (listener, connections) = state.withLock { state -> ((any Channel)?, [any Channel]) in
            guard !state.stopping else { return (nil, []) }
            state.stopping = true
            return (state.listener, Array(state.connections.values))
        }
        guard let listener else { return }
        try? await listener.close()
        logger.info("HTTP server stopped accepting; finishing requests in progress", metadata: ["connections": "\(connections.count)"])
        for connection in connections {
            connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let deadline = listener.eventLoop.scheduleTask(in: TimeAmount(limits.shutdownGracePeriod)) { [state, logger] in
            let remaining = state.withLock { Array($0.connections.values) }
            if !remaining.isEmpty {
                logger.info("grace period over; closing connections with requests still in progress", metadata: ["connections": "\(remaining.count)"])
            }
            for connection in remaining {
                connection.close(promise: nil)
            }
        }
        for connection in connections {
            try? await connection.closeFuture.get()
        }
        deadline.cancel()
    }

    /// Registers an accepted connection so that `shutdown()` can reach it; refuses it once the
    /// server is stopping, or when `limits.maxConnections` are open already.
    private static func accept(
        _ channel: any Channel, limits: HTTPLimits, state: Locked<State>, counters: Locked<HTTPServerStats>,
        rejections: RejectionCounters, log: ThrottledLog
    ) throws {
        let id = ObjectIdentifier(channel)
        enum Outcome { case accepted, stopping, full }
        let outcome = state.withLock { state -> Outcome in
            guard !state.stopping else { return .stopping }
            guard state.connections.count < limits.maxConnections else { return .full }
            state.connections[id] = channel
            return .accepted
        }
        switch outcome {
        case .accepted:
            break
        case .stopping:
            throw ChannelError.ioOnClosedChannel
        case .full:
            counters.withLock { $0.refusedConnections += 1 }
            rejections.count(.tooManyConnections)
            log.info("too_many_connections", "refused a connection: \(limits.maxConnections) connections are open already (HTTPLimits.maxConnections)", metadata: [
                "peer": "\(channel.remoteAddress.map { "\($0)" } ?? "?")",
            ])
            throw ChannelError.ioOnClosedChannel
        }
        counters.withLock { $0.connections += 1 }
        channel.closeFuture.whenComplete { _ in
            _ = state.withLock { $0.connections.removeValue(forKey: id) }
        }
    }
}

/// The server could not start.
public struct HTTPServerError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        /// The socket could not be bound; the text says why (e.g. "address already in use").
        case bindFailed(String)
        case alreadyStarted
    }

    public let host: String
    public let port: Int
    public let reason: Reason

    public var description: String {
        switch reason {
        case .bindFailed(let why):
            "cannot listen on \(host):\(port): \(why); choose another port or address, or stop the process that holds it"
        case .alreadyStarted:
            "the HTTP server for \(host):\(port) was already started; create a new HTTPServer to listen again"
        }
    }

    static func describe(_ error: any Error) -> String {
        if let io = error as? IOError {
            return SocketErrors.describe(errno: io.errnoCode)
        }
        return "\(error)"
    }
}
