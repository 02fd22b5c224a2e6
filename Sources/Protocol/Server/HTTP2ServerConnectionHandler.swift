import Logging
import NIOCore

/// Serves one HTTP/2 (prior knowledge) connection: owns its nghttp2 server session on the
/// channel's event loop and bridges complete requests to an `HTTPHandler`.
///
/// - Each complete request runs the handler in its own task, off the event loop; the response is
///   submitted back on the event loop and goes out with the next flush, which is shared by all
///   responses that finish in the same event-loop tick and happens once per read burst.
/// - A stream the client resets, or a connection that closes, cancels the tasks of its requests;
///   their responses are dropped.
/// - Output is produced only while the channel is writable, and reading pauses while it is not,
///   so a slow reader of large responses cannot make the server buffer without bound.
/// - `ChannelShouldQuiesceEvent` sends a GOAWAY: requests in progress finish, new streams are
///   refused, and the connection closes once the session is done. An idle connection (no open
///   stream) closes the same way on `IdleStateHandler.IdleStateEvent`.
final class HTTP2ServerConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: NGHTTP2Session
    private let handler: any HTTPHandler
    private let stats: Locked<HTTPServerStats>
    private let rejections: RejectionCounters
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var running: [Int32: Task<Void, Never>] = [:]
    private var flushScheduled = false
    private var readHeld = false
    private var closing = false

    init(handler: any HTTPHandler, limits: HTTPLimits, stats: Locked<HTTPServerStats>, rejections: RejectionCounters = .disabled, logger: Logger) throws {
        self.session = try NGHTTP2Session(
            role: .server, maxBodyBytes: limits.maxBodyBytes, maxHeaderBytes: limits.maxHeaderBytes,
            maxConcurrentStreams: limits.maxConcurrentStreams)
        self.handler = handler
        self.stats = stats
        self.rejections = rejections
        self.logger = logger
        session.admission = { [handler] head in handler.admit(head) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let peer = context.channel.remoteAddress.map { "\($0)" }
        logger[metadataKey: "peer"] = "\(peer ?? "?")"
        session.remoteAddress = peer
        if context.channel.isActive {
            flush()  // our SETTINGS go out right away
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelAll()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        flush()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let bytes = unwrapInboundIn(data)
        do {
            try session.receive(bytes)
        } catch {
            fail(error)
            return
        }
        handleEvents()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            flush()
            if readHeld {
                readHeld = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readHeld = true
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !running.isEmpty {
            logger.debug("connection closed with requests in progress; cancelling them", metadata: ["requests": "\(running.count)"])
        }
        cancelAll()
        closing = true
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            logger.debug("shutting down: GOAWAY sent, finishing open streams", metadata: ["streams": "\(session.openStreams)"])
            session.beginGracefulShutdown()
            flush()
        } else if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all {
            if session.openStreams == 0 && running.isEmpty {
                logger.debug("closing idle connection")
                session.beginGracefulShutdown()
                flush()
            }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }

    // MARK: - Requests

    private func handleEvents() {
        for event in session.takeEvents() {
            switch event {
            case .request(let streamID, let request):
                start(request, on: streamID)
            case .bodyTooLarge(_, let method, let path, let limit):
                stats.withLock { $0.rejectedBodies += 1 }
                rejections.count(.bodyTooLarge)
                logger.info("rejected request body over the limit with 413", metadata: ["method": "\(method)", "path": "\(path)", "limit": "\(limit)"])
            case .headersTooLarge(_, let method, let path, let limit):
                stats.withLock { $0.rejectedHeaders += 1 }
                rejections.count(.headersTooLarge)
                logger.info("rejected request headers over the limit with 431", metadata: ["method": "\(method)", "path": "\(path)", "limit": "\(limit)"])
            case .refused:
                stats.withLock { $0.refusedRequests += 1 }  // the handler counted and logged why
            case .streamClosed(let streamID, _):
                running.removeValue(forKey: streamID)?.cancel()
            case .sentGoaway(_, let errorCode) where errorCode != 0:
                stats.withLock { $0.protocolErrors += 1 }
                rejections.count(.protocolError)
                logger.info("closing HTTP/2 connection: the client broke the protocol", metadata: ["error": "\(NGHTTP2Session.describe(errorCode: errorCode))"])
            case .goaway, .sentGoaway, .response, .settingsReceived:
                break
            }
        }
    }

    private func start(_ request: HTTPRequest, on streamID: Int32) {
        guard let context else { return }
        stats.withLock { $0.requests += 1 }
        let eventLoop = context.eventLoop
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        let handler = self.handler
        running[streamID] = Task {
            let response = await handler.handle(request)
            eventLoop.execute {
                this.value.finish(streamID, response)
            }
        }
    }

    private func finish(_ streamID: Int32, _ response: HTTPResponse) {
        guard running.removeValue(forKey: streamID) != nil, !closing else { return }
        if session.submitResponse(streamID: streamID, response) {
            scheduleFlush()
        }
    }

    private func cancelAll() {
        for task in running.values { task.cancel() }
        running.removeAll()
    }

    // MARK: - Output

    /// Flushes once after everything already queued on the event loop (other finished responses)
    /// has run, so responses completing together share one write.
    private func scheduleFlush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.flush()
        }
    }

    private func flush() {
        guard let context, !closing else { return }
        do {
            try session.writeOutput(to: context)
        } catch {
            fail(error)
            return
        }
        handleEvents()  // streams closed while sending
        if !session.isAlive {
            closing = true
            context.close(promise: nil)
        }
    }

    private func fail(_ error: Error) {
        guard let context, !closing else { return }
        closing = true
        stats.withLock { $0.protocolErrors += 1 }
        rejections.count(.protocolError)
        logger.info("closing HTTP/2 connection after a protocol error: \(error)")
        // nghttp2 usually has a GOAWAY queued that tells the peer why.
        var buffer = context.channel.allocator.buffer(capacity: 256)
        _ = try? session.send(into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
