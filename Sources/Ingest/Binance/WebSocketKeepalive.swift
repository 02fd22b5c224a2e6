import NIOCore
import NIOWebSocket

/// A dead connection that NIO would not notice: nothing came from the server for two keepalive
/// intervals, not even the pong to our ping.
struct WebSocketSilenceError: Error, CustomStringConvertible {
    var interval: TimeAmount

    var description: String {
        "no frame from the server for \(interval.nanoseconds * 2 / 1_000_000_000) s, not even a pong to our ping; dropping the connection as dead"
    }
}

/// Keeps a client WebSocket alive on its event loop, whatever its reader is doing:
/// - answers every ping with a pong carrying the same payload (Binance drops clients that do not);
/// - after `interval` without any inbound frame, sends a ping; if the next `interval` also passes
///   in silence, fires `WebSocketSilenceError` and closes the channel;
/// - swallows pings and pongs, passes every other frame on.
///
/// Frames a client sends are masked, as RFC 6455 requires.
final class WebSocketKeepalive: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let interval: TimeAmount
    private var heardSinceTick = false
    private var pingOutstanding = false
    private var timer: RepeatedTask?

    init(interval: Duration) {
        let (seconds, attoseconds) = interval.components
        self.interval = .nanoseconds(max(1_000_000, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopTimer()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopTimer()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        heardSinceTick = true
        pingOutstanding = false
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .pong:
            break
        default:
            context.fireChannelRead(data)
        }
    }

    private func startTimer(context: ChannelHandlerContext) {
        guard timer == nil else { return }
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            bound.value.handler.tick(context: bound.value.context)
        }
    }

    private func stopTimer() {
        timer?.cancel()
        timer = nil
    }

    private func tick(context: ChannelHandlerContext) {
        defer { heardSinceTick = false }
        guard !heardSinceTick else { return }
        if pingOutstanding {
            stopTimer()
            context.fireErrorCaught(WebSocketSilenceError(interval: interval))
            context.close(promise: nil)
            return
        }
        pingOutstanding = true
        let ping = WebSocketFrame(fin: true, opcode: .ping, maskKey: .random(), data: context.channel.allocator.buffer(string: "vigil"))
        context.writeAndFlush(wrapOutboundOut(ping), promise: nil)
    }
}
