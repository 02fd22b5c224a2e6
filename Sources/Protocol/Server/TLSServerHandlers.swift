import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// The first handler of a connection on a TLS port: it looks at the first byte and lets the
/// connection through to TLS only when it starts a TLS record (a handshake, `0x16`).
///
/// Anything else is a cleartext client on the TLS port: it is counted (`plaintext_on_tls`),
/// logged (peer and what to do), answered `400` when it looks like an HTTP/1.1 request (so `curl
/// http://...` says why) and closed. An HTTP/2 prior-knowledge client is just closed: it could not
/// read an HTTP/1.1 answer. Removes itself once the connection is known to be TLS.
final class TLSPlaintextGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The content type of a TLS handshake record: every TLS connection starts with one.
    static let handshakeRecord: UInt8 = 0x16

    private let stats: Locked<HTTPServerStats>
    private let rejections: RejectionCounters
    private let log: ThrottledLog
    private var decided = false

    init(stats: Locked<HTTPServerStats>, rejections: RejectionCounters, log: ThrottledLog) {
        self.stats = stats
        self.rejections = rejections
        self.log = log
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !decided else { return }  // closing: drop the rest
        let bytes = unwrapInboundIn(data)
        guard let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) else { return }
        decided = true
        if first == Self.handshakeRecord {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        stats.withLock { $0.plaintextOnTLS += 1 }
        rejections.count(.plaintextOnTLS)
        let peer = context.channel.remoteAddress.map { "\($0)" } ?? "?"
        log.info("plaintext_on_tls", "refused a cleartext connection on the TLS port; the client must use TLS (https://, or [security] tls_ca for Vigil clients)", metadata: ["peer": "\(peer)"])
        let isHTTP2Preface = bytes.readableBytesView.starts(with: ProtocolSniffer.preface.prefix(bytes.readableBytes))
        guard !isHTTP2Preface, (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(first) else {
            context.close(promise: nil)
            return
        }
        let text = "this port speaks TLS only; use https:// (Vigil clients: set [security] tls_ca)\n"
        var response = context.channel.allocator.buffer(capacity: 160 + text.utf8.count)
        response.writeString("HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: \(text.utf8.count)\r\n\r\n\(text)")
        context.writeAndFlush(NIOAny(response)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

/// Sits behind `NIOSSLServerHandler` until the handshake completes, then removes itself.
///
/// - A handshake not completed within `HTTPLimits.tlsHandshakeTimeout` closes the connection.
/// - A failed handshake (no or bad client certificate, no common version) is counted
///   (`tls_handshake`) and logged with the peer and a hint; NIOSSL closes the connection. A peer
///   that simply disconnects during the handshake (health checks, scanners) is only logged at
///   debug level.
final class TLSHandshakeWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: Duration
    private let stats: Locked<HTTPServerStats>
    private let rejections: RejectionCounters
    private let log: ThrottledLog
    private let logger: Logger
    private var timer: Scheduled<Void>?
    private var finished = false

    init(timeout: Duration, stats: Locked<HTTPServerStats>, rejections: RejectionCounters, log: ThrottledLog, logger: Logger) {
        self.timeout = timeout
        self.stats = stats
        self.rejections = rejections
        self.log = log
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = tls, !finished {
            finished = true
            timer?.cancel()
            logger.trace("TLS handshake completed", metadata: ["peer": "\(Self.peer(context))", "alpn": "\(negotiated ?? "-")"])
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard !finished else {
            context.fireErrorCaught(error)
            return
        }
        finished = true
        timer?.cancel()
        if TLSErrors.isEOFDuringHandshake(error) {
            logger.debug("peer closed the connection during the TLS handshake", metadata: ["peer": "\(Self.peer(context))"])
        } else {
            failed(context: context, TLSErrors.describe(error, side: .server))
        }
        context.close(promise: nil)
    }

    private func startTimer(context: ChannelHandlerContext) {
        guard timer == nil, !finished else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
            guard !self.finished else { return }
            self.finished = true
            self.failed(context: context, "the TLS handshake did not complete within \(self.timeout)")
            context.close(promise: nil)
        }
    }

    private func failed(context: ChannelHandlerContext, _ why: String) {
        stats.withLock { $0.tlsHandshakeFailures += 1 }
        rejections.count(.tlsHandshake)
        log.info("tls_handshake", "TLS handshake failed: \(why)", metadata: ["peer": "\(Self.peer(context))"])
    }

    private static func peer(_ context: ChannelHandlerContext) -> String {
        context.channel.remoteAddress.map { "\($0)" } ?? "?"
    }
}
