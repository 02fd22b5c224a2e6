import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// The state of an `RPCClient`, confined to the client's event loop (which is also the event loop
/// of its connections, so calls, streams and timeouts never cross threads).
///
/// Connection states: `idle` (none; the next call connects), `connecting` (calls wait for the
/// server's SETTINGS), `ready`. A connection that fails to connect fails the calls that waited
/// for it with `.unreachable`; one that closes or goes away returns the client to `idle`, so the
/// next call reconnects. Calls never wait longer than their own timeout.
final class RPCClientCore {
    private enum Connection {
        case idle
        case connecting(generation: Int, waiting: [PendingCall])
        case ready(HTTP2ClientConnectionHandler)
    }

    /// A call refused this many times (server shutting down, stream limit races) fails.
    static let maxAttempts = 4

    let endpoint: HostAndPort
    let eventLoop: any EventLoop
    private let connectTimeout: Duration
    private let maxResponseBytes: Int
    private let tls: ClientTLS?
    private let logger: Logger
    private var connection = Connection.idle
    private var generation = 0
    private var calls: [ObjectIdentifier: PendingCall] = [:]
    /// Every open connection, including draining ones, so that `close()` can close them all.
    private var channels: [ObjectIdentifier: any Channel] = [:]
    private var closed = false

    init(endpoint: HostAndPort, eventLoop: any EventLoop, connectTimeout: Duration, maxResponseBytes: Int, tls: ClientTLS? = nil, logger: Logger) {
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.connectTimeout = connectTimeout
        self.maxResponseBytes = maxResponseBytes
        self.tls = tls
        self.logger = logger
    }

    // MARK: - Calls

    func start(_ request: OutgoingRequest, promise: EventLoopPromise<HTTPResponse>, timeout: Duration) {
        let call = PendingCall(request: request, promise: promise)
        guard !closed else {
            promise.fail(RPCError.connectionClosed("the client for \(endpoint) is closed; create a new RPCClient"))
            return
        }
        calls[ObjectIdentifier(promise.futureResult)] = call
        call.timeout = eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
            call.connection?.probeLiveness(within: TimeAmount(self.connectTimeout))
            self.giveUp(call, RPCError.timeout("\(request.summary) to \(self.endpoint) got no response within \(timeout)"))
        }
        dispatch(call)
    }

    /// The calling task was cancelled.
    func cancel(_ promise: EventLoopPromise<HTTPResponse>) {
        guard let call = calls[ObjectIdentifier(promise.futureResult)] else { return }
        giveUp(call, CancellationError())
    }

    func finish(_ call: PendingCall, _ result: Result<HTTPResponse, any Error>) {
        guard !call.finished else { return }
        call.finished = true
        call.timeout?.cancel()
        calls.removeValue(forKey: ObjectIdentifier(call.promise.futureResult))
        call.promise.completeWith(result)
    }

    /// Puts a call the server did not process (refused stream, GOAWAY) on another connection.
    func resubmit(_ call: PendingCall, refusedBy connection: HTTP2ClientConnectionHandler) {
        guard !call.finished else { return }
        call.streamID = nil
        call.connection = nil
        if call.attempts >= Self.maxAttempts {
            finish(call, .failure(RPCError.connectionClosed("\(endpoint) refused \(call.request.summary) \(call.attempts) times (shutting down or overloaded)")))
            return
        }
        dispatch(call)
    }

    private func dispatch(_ call: PendingCall) {
        switch connection {
        case .ready(let handler):
            handler.submit(call)
        case .connecting(let generation, var waiting):
            connection = .idle  // keep the array uniquely referenced while appending
            waiting.append(call)
            connection = .connecting(generation: generation, waiting: waiting)
        case .idle:
            connect(first: call)
        }
    }

    private func giveUp(_ call: PendingCall, _ error: any Error) {
        guard !call.finished else { return }
        call.connection?.abandon(call)
        if case .connecting(let generation, let waiting) = connection {
            connection = .connecting(generation: generation, waiting: waiting.filter { $0 !== call })
        }
        finish(call, .failure(error))
    }

    // MARK: - Connections

    private func connect(first call: PendingCall) {
        generation += 1
        let attempt = generation
        connection = .connecting(generation: attempt, waiting: [call])
        let core = NIOLoopBound(self, eventLoop: eventLoop)
        let authority = endpoint.description
        let maxResponseBytes = self.maxResponseBytes
        let logger = self.logger
        let tls = self.tls
        // An IP address is checked against the certificate's IP subject alternative names (SNI
        // cannot carry one); a name is sent as SNI and checked against its DNS names.
        let serverHostname = (try? SocketAddress(ipAddress: endpoint.host, port: 0)) == nil ? endpoint.host : nil
        logger.debug("connecting", metadata: ["tls": "\(tls != nil)"])
        ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: serverHostname))
                    }
                    let handler = try HTTP2ClientConnectionHandler(
                        core: core.value, generation: attempt, authority: authority, maxResponseBytes: maxResponseBytes,
                        scheme: tls == nil ? "http" : "https", logger: logger)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.connected(channel, attempt: attempt)
                case .failure(let error):
                    let reason = SocketErrors.describeConnectFailure(error, timeout: self.connectTimeout)
                    self.connectFailed(attempt: attempt, RPCError.unreachable("cannot reach \(self.endpoint): \(reason)"))
                }
            }
    }

    private func connected(_ channel: any Channel, attempt: Int) {
        if closed {
            channel.close(promise: nil)
            return
        }
        channels[ObjectIdentifier(channel)] = channel
    }

    private func connectFailed(attempt: Int, _ error: RPCError) {
        guard case .connecting(let generation, let waiting) = connection, generation == attempt else { return }
        connection = .idle
        logger.debug("connect failed: \(error)")
        for call in waiting {
            finish(call, .failure(error))
        }
    }

    /// The server's SETTINGS arrived: the calls waiting for the connection go out.
    func connectionReady(_ handler: HTTP2ClientConnectionHandler) {
        guard case .connecting(let generation, let waiting) = connection, generation == handler.generation else { return }
        connection = .ready(handler)
        logger.debug("connected")
        for call in waiting {
            handler.submit(call)
        }
    }

    /// The connection takes no new calls (GOAWAY): the next call opens a new one.
    func connectionDraining(_ handler: HTTP2ClientConnectionHandler) {
        if case .ready(let current) = connection, current === handler {
            connection = .idle
        }
    }

    func connectionClosed(_ handler: HTTP2ClientConnectionHandler) {
        channels = channels.filter { $0.value.isActive }
        switch connection {
        case .ready(let current) where current === handler:
            connection = .idle
        case .connecting(let generation, let waiting) where generation == handler.generation:
            connection = .idle
            let error = RPCError.unreachable("cannot reach \(endpoint): \(Self.describeEarlyClose(handler.failure, tls: tls != nil))")
            for call in waiting {
                finish(call, .failure(error))
            }
        default:
            break
        }
    }

    /// Why a connection closed before the server's SETTINGS arrived, and what to check.
    static func describeEarlyClose(_ failure: (any Error)?, tls: Bool) -> String {
        switch failure {
        case let error? where error is NIOSSLError || error is NIOSSLExtraError || error is BoringSSLError:
            return "TLS handshake failed: \(TLSErrors.describe(error, side: .client))"
        case let error? where error is HTTP2SessionError:
            return tls
                ? "the server does not speak HTTP/2 over TLS (\(error)); is it a Vigil coordinator?"
                : "the server's first bytes are not HTTP/2 (\(error)); is it a Vigil coordinator? If it serves TLS, set [security] tls_ca on this side"
        default:
            return tls
                ? "the connection closed before the HTTP/2 handshake completed (is it a Vigil server?)"
                : "the connection closed before the HTTP/2 handshake completed (is it a Vigil server? If it serves TLS, set [security] tls_ca on this side)"
        }
    }

    /// Fails every call in progress and closes every connection; later calls fail at once.
    func close() -> EventLoopFuture<Void> {
        closed = true
        for call in Array(calls.values) {
            giveUp(call, RPCError.connectionClosed("the client for \(endpoint) was closed while \(call.request.summary) was in progress"))
        }
        connection = .idle
        let closing = channels.values.map { channel in
            channel.close().recover { _ in }
        }
        channels.removeAll()
        return EventLoopFuture.andAllComplete(closing, on: eventLoop)
    }
}
