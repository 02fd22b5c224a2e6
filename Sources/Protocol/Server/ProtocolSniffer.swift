import Logging
import NIOCore
import NIOHTTP1

/// The first handler of every accepted connection: it looks at the first bytes and installs the
/// HTTP/2 handler when they are the client connection preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`,
/// i.e. HTTP/2 with prior knowledge) and NIO's HTTP/1.1 pipeline otherwise, then hands them on
/// and removes itself. It decides as soon as the bytes differ from the preface, so an HTTP/1.1
/// request never waits for 24 bytes.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private let handler: any HTTPHandler
    private let limits: HTTPLimits
    private let stats: Locked<HTTPServerStats>
    private let rejections: RejectionCounters
    private let logger: Logger
    private var buffered: ByteBuffer?

    init(handler: any HTTPHandler, limits: HTTPLimits, stats: Locked<HTTPServerStats>, rejections: RejectionCounters = .disabled, logger: Logger) {
        self.handler = handler
        self.limits = limits
        self.stats = stats
        self.rejections = rejections
        self.logger = logger
    }

    /// What the bytes seen so far say: `nil` while they are a proper prefix of the preface.
    static func detect(_ bytes: ByteBuffer) -> HTTPVersionKind? {
        let count = min(bytes.readableBytes, preface.count)
        let matches = bytes.withUnsafeReadableBytes { raw in
            zip(raw.prefix(count), preface.prefix(count)).allSatisfy { $0 == $1 }
        }
        if !matches { return .http1 }
        return count == preface.count ? .http2 : nil
    }

    enum HTTPVersionKind {
        case http1
        case http2
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var earlier = buffered {
            earlier.writeBuffer(&bytes)
            bytes = earlier
        }
        guard let kind = Self.detect(bytes) else {
            buffered = bytes
            return
        }
        buffered = nil
        do {
            try install(kind, context: context)
        } catch {
            logger.warning("cannot set up the connection's HTTP pipeline: \(error)")
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Nothing is in progress before the first request: shutting down or idling just closes.
        if event is ChannelShouldQuiesceEvent {
            context.close(promise: nil)
        } else if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func install(_ kind: HTTPVersionKind, context: ChannelHandlerContext) throws {
        let pipeline = context.pipeline.syncOperations
        switch kind {
        case .http2:
            stats.withLock { $0.http2Connections += 1 }
            try pipeline.addHandler(
                HTTP2ServerConnectionHandler(handler: handler, limits: limits, stats: stats, rejections: rejections, logger: logger),
                position: .last
            )
        case .http1:
            let bridge = HTTP1ServerHandler(handler: handler, limits: limits, stats: stats, rejections: rejections, logger: logger)
            try pipeline.configureHTTPServerPipeline(position: .last, withPipeliningAssistance: true, withErrorHandling: true)
            try pipeline.addHandler(bridge, position: .last)
        }
    }
}
