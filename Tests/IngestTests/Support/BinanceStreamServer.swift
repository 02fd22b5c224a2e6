import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import Synchronization

/// A local stand-in for Binance's combined-stream server, over plain TCP or TLS on 127.0.0.1.
///
/// Each accepted WebSocket connection follows the next `Plan`: an optional ping (whose pong is
/// recorded), the trade lines wrapped as combined-stream frames
/// (`{"stream":"btcusdt@trade","data":LINE}`), then an ending: a dropped TCP connection, a
/// close frame (as at Binance's 24-hour mark), or staying open. Connections beyond the plans
/// stay open and send nothing. It records every request target, pong payload and client ping.
final class BinanceStreamServer: Sendable {
    struct Plan: Sendable {
        enum Ending: Sendable {
            /// End the TCP stream without a close frame, once every frame is written.
            case drop
            /// Send a close frame with this code, then close when the client answers.
            case closeFrame(code: UInt16, reason: String)
            /// Keep the connection open.
            case stayOpen
        }

        var lines: [String]
        var ending: Ending
        /// Send a ping (payload `ping-<connection>`) before the trades.
        var pingFirst = true
    }

    /// What the server saw, for assertions.
    struct Seen: Sendable {
        var requestTargets: [String] = []
        var pongs: [String] = []
        var clientPings = 0
        var connections = 0
    }

    let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let state: ServerState

    /// - Parameters:
    ///   - tls: serve `wss://` with this configuration; nil for `ws://`.
    ///   - rejectWith: answer every upgrade request with this HTTP status and a short body instead.
    init(plans: [Plan], tls: TLSConfiguration? = nil, rejectWith: HTTPResponseStatus? = nil) throws {
        let state = ServerState(plans: plans)
        self.state = state
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0) }
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: 1 << 20,
                        shouldUpgrade: { channel, head in
                            state.record { $0.requestTargets.append(head.uri) }
                            return channel.eventLoop.makeSucceededFuture(rejectWith == nil ? HTTPHeaders() : nil)
                        },
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                let number = state.record { seen -> Int in
                                    seen.connections += 1
                                    return seen.connections
                                }
                                let plan = number <= state.plans.count ? state.plans[number - 1] : Plan(lines: [], ending: .stayOpen, pingFirst: false)
                                try channel.pipeline.syncOperations.addHandler(ScriptedStream(plan: plan, connection: number, state: state))
                            }
                        })
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    if let rejectWith {
                        try channel.pipeline.syncOperations.addHandler(RejectingResponder(status: rejectWith))
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress?.port ?? 0
    }

    /// `ws://127.0.0.1:PORT`, or `wss://localhost:PORT` (the certificate's name) with TLS.
    func url(tls: Bool) -> String { tls ? "wss://localhost:\(port)" : "ws://127.0.0.1:\(port)" }

    var seen: Seen { state.record { $0 } }

    func shutdown() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    /// Wraps a trade line as Binance's combined stream does.
    static func frame(for line: String) -> String {
        let symbol = line.range(of: #""s":""#).map { line[$0.upperBound...].prefix { $0 != "\"" } } ?? "?"
        return #"{"stream":"\#(symbol.lowercased())@trade","data":\#(line)}"#
    }
}

/// The plans and what the server saw, shared by its connections.
private final class ServerState: Sendable {
    let plans: [BinanceStreamServer.Plan]
    private let seen = Mutex(BinanceStreamServer.Seen())

    init(plans: [BinanceStreamServer.Plan]) { self.plans = plans }

    @discardableResult
    func record<T>(_ update: (inout BinanceStreamServer.Seen) -> T) -> T { seen.withLock { update(&$0) } }
}

/// Plays one connection's plan.
private final class ScriptedStream: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let plan: BinanceStreamServer.Plan
    private let connection: Int
    private let state: ServerState

    init(plan: BinanceStreamServer.Plan, connection: Int, state: ServerState) {
        self.plan = plan
        self.connection = connection
        self.state = state
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let allocator = context.channel.allocator
        if plan.pingFirst {
            let ping = WebSocketFrame(fin: true, opcode: .ping, data: allocator.buffer(string: "ping-\(connection)"))
            context.write(wrapOutboundOut(ping), promise: nil)
        }
        for line in plan.lines {
            let frame = WebSocketFrame(fin: true, opcode: .text, data: allocator.buffer(string: BinanceStreamServer.frame(for: line)))
            context.write(wrapOutboundOut(frame), promise: nil)
        }
        let flushed = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: allocator.buffer(string: "unsolicited"))), promise: flushed)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        switch plan.ending {
        case .drop:
            // Half-close: the client reads every frame, then meets the end of the stream. (A full
            // close with the client's pong still unread would send a reset that can discard
            // frames the client has not read yet.) The connection closes when the client hangs up.
            flushed.futureResult.whenComplete { _ in bound.value.close(mode: .output, promise: nil) }
        case .closeFrame(let code, let reason):
            var body = allocator.buffer(capacity: 2 + reason.utf8.count)
            body.writeInteger(code)
            body.writeString(reason)
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: body)), promise: nil)
        case .stayOpen:
            break
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .pong:
            let payload = String(buffer: frame.unmaskedData)
            state.record { $0.pongs.append(payload) }
        case .ping:
            // Deliberately unanswered: the client must notice a silent server by itself.
            state.record { $0.clientPings += 1 }
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }
}

/// Answers a request that was not upgraded with a fixed status, as Binance does from a
/// restricted location (HTTP 451 with a JSON body).
private final class RejectingResponder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let status: HTTPResponseStatus

    init(status: HTTPResponseStatus) { self.status = status }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        let body = #"{"code":0,"msg":"Service unavailable from a restricted location."}"#
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}
