import CNghttp2
import Logging
import NIOCore

/// One client HTTP/2 connection: owns an nghttp2 client session on the channel's event loop and
/// carries many calls at once, one stream each. It reports to its `RPCClientCore`, which decides
/// which connection a call goes to.
///
/// - The connection is ready once the server's SETTINGS arrive (its stream limit is then known;
///   calls over the limit wait inside nghttp2 for a stream to free up).
/// - A GOAWAY makes it draining: calls in progress finish, new ones go to a new connection, and it
///   closes when nghttp2 has nothing left to do. Calls the server refused are handed back to the core.
/// - When the channel closes, every call still on it fails with `RPCError.connectionClosed`.
final class HTTP2ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Which connection attempt of the core this is.
    let generation: Int
    private(set) var isReady = false
    private(set) var isDraining = false
    /// Why the connection failed (a TLS handshake error, the server breaking HTTP/2), if it did.
    private(set) var failure: (any Error)?
    private weak var core: RPCClientCore?
    private let session: NGHTTP2Session
    private let authority: String
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var calls: [Int32: PendingCall] = [:]
    private var flushScheduled = false
    private var closed = false
    /// When bytes last arrived; a PING unanswered past its deadline means the peer is gone.
    private var lastReceived = NIODeadline.now()
    private var probing = false

    init(core: RPCClientCore, generation: Int, authority: String, maxResponseBytes: Int, scheme: String = "http", logger: Logger) throws {
        self.core = core
        self.generation = generation
        self.authority = authority
        self.logger = logger
        self.session = try NGHTTP2Session(role: .client, maxBodyBytes: maxResponseBytes)
        session.scheme = scheme
    }

    // MARK: - Calls

    /// Opens a stream for `call`. If this connection can take no new stream (GOAWAY received,
    /// stream ids used up), it becomes draining and the call goes back to the core.
    func submit(_ call: PendingCall) {
        guard !closed, !isDraining else {
            core?.resubmit(call, refusedBy: self)
            return
        }
        let request = call.request
        do {
            let streamID = try session.submitRequest(method: request.method, target: request.target, authority: authority, headers: request.headers, body: request.body)
            call.streamID = streamID
            call.connection = self
            call.attempts += 1
            calls[streamID] = call
            scheduleFlush()
        } catch {
            logger.debug("connection cannot open a new stream (\(error)); moving the call to a new connection")
            becomeDraining()
            core?.resubmit(call, refusedBy: self)
        }
    }

    /// Gives up on `call` (timed out or cancelled): resets its stream so the server can stop.
    func abandon(_ call: PendingCall) {
        guard let streamID = call.streamID, calls.removeValue(forKey: streamID) != nil else { return }
        session.resetStream(streamID)
        scheduleFlush()
    }

    /// Checks that the server is still there after a call timed out: a silent peer (host down,
    /// network cut, no FIN or RST) would otherwise hold every later call until TCP gives up,
    /// minutes later. Sends a PING and closes the connection if nothing at all arrives within
    /// `deadline`, so that the next call connects afresh. A merely slow handler does not trip
    /// it: the server's nghttp2 answers PINGs itself.
    func probeLiveness(within deadline: TimeAmount) {
        guard !closed, !probing, let context else { return }
        probing = true
        let sentAt = NIODeadline.now()
        session.ping()
        scheduleFlush()
        context.eventLoop.assumeIsolated().scheduleTask(in: deadline) {
            self.probing = false
            guard !self.closed, self.lastReceived < sentAt else { return }
            self.logger.info("the server answered nothing, not even a PING, within \(deadline); closing the connection so the next call reconnects")
            self.close()
        }
    }

    /// Closes the connection; calls still on it fail.
    func close() {
        context?.close(promise: nil)
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { flush() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        flush()  // preface and SETTINGS
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        lastReceived = .now()
        do {
            try session.receive(unwrapInboundIn(data))
        } catch {
            if failure == nil { failure = error }
            logger.info("closing the connection: the server broke the HTTP/2 protocol (\(error))")
            flush()
            context.close(promise: nil)
            return
        }
        handleEvents()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flush() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        let orphans = calls.values
        calls.removeAll()
        for call in orphans {
            core?.finish(call, .failure(RPCError.connectionClosed("the connection to \(authority) closed before the response to \(call.request.summary) arrived")))
        }
        core?.connectionClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if failure == nil { failure = error }
        logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }

    // MARK: - Private

    private func handleEvents() {
        for event in session.takeEvents() {
            switch event {
            case .settingsReceived:
                isReady = true
                core?.connectionReady(self)
            case .response(let streamID, let response):
                if let call = calls.removeValue(forKey: streamID) {
                    core?.finish(call, .success(response))
                }
            case .bodyTooLarge(let streamID, _, _, let limit):
                if let call = calls.removeValue(forKey: streamID) {
                    core?.finish(call, .failure(RPCError.badResponse("the response to \(call.request.summary) from \(authority) is larger than the client's limit of \(limit) bytes")))
                }
            case .headersTooLarge(let streamID, _, _, let limit):
                if let call = calls.removeValue(forKey: streamID) {
                    core?.finish(call, .failure(RPCError.badResponse("the response headers to \(call.request.summary) from \(authority) are larger than the client's limit of \(limit) bytes")))
                }
            case .streamClosed(let streamID, let errorCode):
                guard let call = calls.removeValue(forKey: streamID) else { continue }
                if errorCode == NGHTTP2_REFUSED_STREAM.rawValue {
                    core?.resubmit(call, refusedBy: self)
                } else {
                    let reason = NGHTTP2Session.describe(errorCode: errorCode)
                    core?.finish(call, .failure(RPCError.connectionClosed("\(authority) reset the stream of \(call.request.summary) without answering (\(reason))")))
                }
            case .goaway(let lastStreamID, let errorCode):
                logger.debug("server sent GOAWAY", metadata: ["last_stream": "\(lastStreamID)", "error": "\(NGHTTP2Session.describe(errorCode: errorCode))"])
                becomeDraining()
            case .request, .sentGoaway, .refused:
                break
            }
        }
    }

    private func becomeDraining() {
        guard !isDraining else { return }
        isDraining = true
        core?.connectionDraining(self)
    }

    private func scheduleFlush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.flush()
        }
    }

    private func flush() {
        guard let context, !closed else { return }
        do {
            try session.writeOutput(to: context)
        } catch {
            logger.info("closing the connection after an HTTP/2 error: \(error)")
            context.close(promise: nil)
            return
        }
        handleEvents()
        if !session.isAlive {
            context.close(promise: nil)
        }
    }
}
