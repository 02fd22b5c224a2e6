import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// Opens one client WebSocket: TCP, TLS for `wss://` (NIOSSL), the HTTP/1.1 upgrade
/// (NIOWebSocket's client upgrader), then frames.
///
/// The returned channel delivers whole messages (fragments reassembled) and never pings or
/// pongs: `WebSocketKeepalive` answers the server's pings and detects a silent peer on the
/// event loop, whatever the reader is doing. Every failure becomes one `IngestError` line.
enum WebSocketDialer {
    typealias Frames = NIOAsyncChannel<WebSocketFrame, WebSocketFrame>

    private enum Upgrade: Sendable {
        case upgraded(Frames)
        case rejected(EventLoopFuture<RejectedUpgrade>)
    }

    /// Connects to `endpoint`, asks for `target` and upgrades to WebSocket.
    /// - Throws: `IngestError` `.connectFailed` (refused, unresolvable, timed out, closed during
    ///   the handshake), `.tlsFailed`, `.upgradeRejected` (with the HTTP status and the start of the body).
    static func connect(
        endpoint: WebSocketEndpoint, target: String, sslContext: NIOSSLContext?, timeout: Duration,
        keepalive: Duration, maximumFrameSize: Int, group: any EventLoopGroup
    ) async throws(IngestError) -> Frames {
        let url = "\(endpoint.usesTLS ? "wss" : "ws")://\(endpoint.hostHeader)\(target)"
        let timeoutAmount = TimeAmount.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        let upgrade: EventLoopFuture<Upgrade>
        do {
            upgrade = try await ClientBootstrap(group: group)
                .connectTimeout(timeoutAmount)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: endpoint.host, port: endpoint.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try configure(channel, endpoint: endpoint, target: target, sslContext: sslContext,
                                      keepalive: keepalive, maximumFrameSize: maximumFrameSize, timeout: timeoutAmount)
                    }
                }
        } catch {
            throw describe(error, url: url, endpoint: endpoint, timeout: timeout)
        }
        let outcome: Upgrade
        do {
            outcome = try await upgrade.get()
        } catch {
            throw describe(error, url: url, endpoint: endpoint, timeout: timeout)
        }
        switch outcome {
        case .upgraded(let frames):
            return frames
        case .rejected(let response):
            let rejection: RejectedUpgrade
            do {
                rejection = try await response.get()
            } catch {
                throw describe(error, url: url, endpoint: endpoint, timeout: timeout)
            }
            throw rejection.error(url: url)
        }
    }

    /// Builds the pipeline: [TLS] → HTTP client with the WebSocket upgrader; after the upgrade,
    /// the frame aggregator and the keepalive handler. Runs on the channel's event loop.
    private static func configure(
        _ channel: any Channel, endpoint: WebSocketEndpoint, target: String, sslContext: NIOSSLContext?,
        keepalive: Duration, maximumFrameSize: Int, timeout: TimeAmount
    ) throws -> EventLoopFuture<Upgrade> {
        let pipeline = channel.pipeline.syncOperations
        if let sslContext {
            try pipeline.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: endpoint.hostIsIPAddress ? nil : endpoint.host))
        }
        let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(maxFrameSize: maximumFrameSize) { channel, _ in
            channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                try pipeline.addHandler(NIOWebSocketFrameAggregator(
                    minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16, maxAccumulatedFrameSize: maximumFrameSize))
                try pipeline.addHandler(WebSocketKeepalive(interval: keepalive))
                return .upgraded(try Frames(wrappingChannelSynchronously: channel))
            }
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: endpoint.hostHeader)
        headers.add(name: "User-Agent", value: "vigil-ingest")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target, headers: headers)
        let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
            upgradeRequestHead: head, upgraders: [upgrader],
            notUpgradingCompletionHandler: { channel in
                channel.eventLoop.makeCompletedFuture {
                    let collector = RejectedUpgradeCollector(promise: channel.eventLoop.makePromise())
                    try channel.pipeline.syncOperations.addHandler(collector)
                    return .rejected(collector.result)
                }
            })
        let result = try pipeline.configureUpgradableHTTPClientPipeline(configuration: .init(upgradeConfiguration: configuration))
        // A server that accepts TCP but never answers the upgrade must not hang the feed.
        let deadline = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        result.whenComplete { _ in deadline.cancel() }
        return result
    }

    /// One line for any failure before the upgrade completed.
    private static func describe(_ error: any Error, url: String, endpoint: WebSocketEndpoint, timeout: Duration) -> IngestError {
        if let error = error as? IngestError { return error }
        let address = "\(endpoint.host):\(endpoint.port)"
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            return IngestError(.tlsFailed, """
                TLS handshake with \(address) for \(url) failed: \(error); check that the URL's host name matches \
                the server's certificate and that its issuer is trusted (the system's CA certificates, e.g. the \
                ca-certificates package), and that the server speaks TLS (ws:// for plain servers)
                """)
        }
        let cause: String
        switch error {
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first {
                cause = (first.error as? IOError).map { systemError($0.errnoCode) } ?? "\(first.error)"
            } else if error.dnsAError != nil || error.dnsAAAAError != nil {
                cause = "cannot resolve the host name \(endpoint.host)"
            } else {
                cause = "\(error)"
            }
        case let error as IOError:
            cause = systemError(error.errnoCode)
        case ChannelError.connectTimeout:
            cause = "no TCP connection within \(timeout)"
        case ChannelError.inappropriateOperationForState, ChannelError.ioOnClosedChannel, ChannelError.alreadyClosed, ChannelError.eof:
            cause = "the connection closed before the WebSocket handshake completed (no answer within \(timeout), or the server hung up)"
        default:
            cause = "\(error)"
        }
        return IngestError(.connectFailed, "\(url) (\(address)): \(cause); check the URL and that this host may connect to it")
    }
}

/// The server's answer when it did not switch to WebSocket.
struct RejectedUpgrade: Sendable {
    var status: HTTPResponseStatus
    var bodyExcerpt: String

    func error(url: String) -> IngestError {
        var hint = "check the URL's path and symbols"
        if status.code == 451 || status.code == 403 {
            hint = "Binance refuses connections from restricted locations; use an endpoint you may use (e.g. wss://stream.binance.us:9443 for US users)"
        } else if status.code == 429 || status.code == 418 {
            hint = "the server rate-limits this address; it will be retried with backoff"
        }
        let body = bodyExcerpt.isEmpty ? "" : ": \(bodyExcerpt)"
        return IngestError(.upgradeRejected, "\(url) answered HTTP \(status.code) \(status.reasonPhrase)\(body); \(hint)")
    }
}

/// Reads the response that refused the upgrade (status and up to 200 bytes of body), then closes.
private final class RejectedUpgradeCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    let result: EventLoopFuture<RejectedUpgrade>
    private let promise: EventLoopPromise<RejectedUpgrade>
    private var status: HTTPResponseStatus?
    private var body: [UInt8] = []
    private var completed = false

    init(promise: EventLoopPromise<RejectedUpgrade>) {
        self.promise = promise
        self.result = promise.futureResult
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
        case .body(var buffer):
            let room = 200 - body.count
            if room > 0, let bytes = buffer.readBytes(length: min(room, buffer.readableBytes)) { body += bytes }
        case .end:
            complete(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        complete(context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        complete(context: context)
    }

    private func complete(context: ChannelHandlerContext) {
        guard !completed else { return }
        completed = true
        guard let status else {
            promise.fail(ChannelError.eof)
            return
        }
        let text = String(decoding: body, as: UTF8.self).split(whereSeparator: \.isNewline).joined(separator: " ")
        promise.succeed(RejectedUpgrade(status: status, bodyExcerpt: text))
        context.close(promise: nil)
    }
}
