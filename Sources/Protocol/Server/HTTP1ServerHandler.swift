import Logging
import NIOCore
import NIOHTTP1

/// Bridges NIO's HTTP/1.1 server pipeline (`configureHTTPServerPipeline`, which serialises
/// pipelined requests) to an `HTTPHandler`, for browsers and clients without HTTP/2.
///
/// - Requests are answered one at a time, in order, each in a task off the event loop.
/// - `Expect: 100-continue` is answered with 100 before the body is read, unless the declared
///   length is already over the limit.
/// - A body over `HTTPLimits.maxBodyBytes` gets a 413 and the connection is closed after it.
/// - A request the handler's `admit` refuses (e.g. no token) gets that answer as soon as its head
///   arrives; its body is not read and the connection is closed after the answer.
/// - The connection closes when the request asks for it (`Connection: close`, HTTP/1.0), when the
///   channel goes idle with no request in progress, and when the connection goes away mid-request
///   (the handler's task is cancelled).
final class HTTP1ServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, [UInt8])
        /// Answered 413 (or refused by `admit`); the rest of the request is dropped and the
        /// connection closes.
        case rejected
        case handling(HTTPRequestHead, Task<Void, Never>)
    }

    private let handler: any HTTPHandler
    private let limits: HTTPLimits
    private let stats: Locked<HTTPServerStats>
    private let rejections: RejectionCounters
    private let logger: Logger
    private var state = State.idle
    private var peer: String?

    init(handler: any HTTPHandler, limits: HTTPLimits, stats: Locked<HTTPServerStats>, rejections: RejectionCounters = .disabled, logger: Logger) {
        self.handler = handler
        self.limits = limits
        self.stats = stats
        self.rejections = rejections
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        peer = context.channel.remoteAddress.map { "\($0)" }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle):
            if let refusal = handler.admit(request(head, body: [])) {
                stats.withLock { $0.refusedRequests += 1 }  // the handler counted and logged why
                refuse(context: context, head, with: refusal)
                return
            }
            let declared = head.headers.first(name: "content-length").flatMap(Int.init) ?? 0
            if declared > limits.maxBodyBytes {
                reject(context: context, head)
                return
            }
            if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
            var body: [UInt8] = []
            body.reserveCapacity(min(declared, NGHTTP2Session.maxReservedBytes))  // grows as bytes arrive, not as declared
            state = .receiving(head, body)
        case (.body(let chunk), .receiving(let head, var body)):
            if body.count + chunk.readableBytes > limits.maxBodyBytes {
                reject(context: context, head)
                return
            }
            state = .idle  // drop the reference so the append does not copy
            body.append(contentsOf: chunk.readableBytesView)
            state = .receiving(head, body)
        case (.end, .receiving(let head, let body)):
            start(context: context, head, body)
        case (_, .rejected):
            break
        default:
            // NIO's pipeline handler delivers one well-formed request at a time; anything else is a bug.
            logger.warning("unexpected HTTP/1.1 request part; closing the connection")
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .handling(_, let task) = state {
            task.cancel()
        }
        state = .idle
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all {
            if case .idle = state {
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func start(context: ChannelHandlerContext, _ head: HTTPRequestHead, _ body: [UInt8]) {
        stats.withLock { $0.requests += 1 }
        let request = self.request(head, body: body)
        let eventLoop = context.eventLoop
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        let boundContext = NIOLoopBound(context, eventLoop: eventLoop)
        let handler = self.handler
        let task = Task {
            let response = await handler.handle(request)
            eventLoop.execute {
                this.value.respond(context: boundContext.value, response)
            }
        }
        state = .handling(head, task)
    }

    private func respond(context: ChannelHandlerContext, _ response: HTTPResponse) {
        guard case .handling(let head, _) = state else { return }  // the connection went away
        state = .idle
        let keepAlive = head.isKeepAlive
        write(context: context, response, version: head.version, keepAlive: keepAlive, omitBody: head.method == .HEAD)
            .assumeIsolated().whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
    }

    private func request(_ head: HTTPRequestHead, body: [UInt8]) -> HTTPRequest {
        let (path, query) = RequestTarget.split(head.uri)
        return HTTPRequest(
            method: head.method.rawValue, path: path, query: query,
            headers: head.headers.map { ($0.name.lowercased(), $0.value) }, body: body, remoteAddress: peer
        )
    }

    private func reject(context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        stats.withLock { $0.rejectedBodies += 1 }
        rejections.count(.bodyTooLarge)
        logger.info("rejected request body over the limit with 413", metadata: ["method": "\(head.method)", "path": "\(RequestTarget.split(head.uri).path)", "limit": "\(limits.maxBodyBytes)"])
        refuse(context: context, head, with: .text("request body exceeds the server's limit of \(limits.maxBodyBytes) bytes; send a smaller body\n", status: 413))
    }

    /// Answers `response` instead of serving the request, drops the rest of it and closes.
    private func refuse(context: ChannelHandlerContext, _ head: HTTPRequestHead, with response: HTTPResponse) {
        state = .rejected
        write(context: context, response, version: head.version, keepAlive: false, omitBody: head.method == .HEAD)
            .assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
    }

    /// Headers that describe the connection or the framing, which this handler sets itself.
    private static let framingHeaders: Set<String> = ["content-length", "connection", "keep-alive", "transfer-encoding", "upgrade"]

    private func write(context: ChannelHandlerContext, _ response: HTTPResponse, version: HTTPVersion, keepAlive: Bool, omitBody: Bool) -> EventLoopFuture<Void> {
        var headers = HTTPHeaders()
        headers.reserveCapacity(response.headers.count + 2)
        for header in response.headers where !Self.framingHeaders.contains(header.name.lowercased()) {
            headers.add(name: header.name, value: header.value)
        }
        headers.add(name: "content-length", value: String(response.body.count))
        if !keepAlive {
            headers.add(name: "connection", value: "close")
        }
        let head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !omitBody && !response.body.isEmpty {
            var buffer = context.channel.allocator.buffer(capacity: response.body.count)
            buffer.writeBytes(response.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        return context.writeAndFlush(wrapOutboundOut(.end(nil)))
    }
}
