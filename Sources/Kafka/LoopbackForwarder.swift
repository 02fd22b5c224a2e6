import Logging
import NIOCore
import NIOPosix

/// Listens on 127.0.0.1:`port` and relays every TCP connection, byte for byte, to `target`.
///
/// It gives librdkafka's mock cluster (which always binds an ephemeral port) a fixed bootstrap
/// address. Only bootstrap traffic goes through it: the metadata the broker returns advertises
/// the mock's own address, which clients then use directly.
final class LoopbackForwarder: Sendable {
    /// The port actually listened on (the requested one, or the kernel's pick for 0).
    let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let server: Channel

    init(port: Int, target: SocketAddress, logger: Logger) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { inbound in
                // Same event loop for both sides, so the paired handlers never cross threads.
                ClientBootstrap(group: inbound.eventLoop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .connect(to: target)
                    .flatMapThrowing { outbound in
                        let (toBroker, toClient) = RelayHandler.pair()
                        try inbound.pipeline.syncOperations.addHandler(toBroker)
                        try outbound.pipeline.syncOperations.addHandler(toClient)
                    }
                    .flatMapErrorThrowing { error in
                        logger.info("embedded broker forwarder cannot reach the mock broker at \(target): \(error)")
                        throw error  // the accepted connection is closed
                    }
            }
        do {
            server = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw KafkaError(.listenFailed, "cannot listen on 127.0.0.1:\(port) for the embedded broker: \(error); choose another --port or stop what uses it")
        }
        self.group = group
        self.port = server.localAddress?.port ?? port
    }

    /// Stops listening and closes every relayed connection.
    func shutdown() {
        try? server.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// One side of a relay: what its channel reads is written to the partner's channel.
///
/// Backpressure: a side reads only while its partner's channel is writable, so a slow peer
/// stops the fast one instead of growing a buffer. Either side closing closes the other.
private final class RelayHandler: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var readWanted = false

    static func pair() -> (RelayHandler, RelayHandler) {
        let first = RelayHandler()
        let second = RelayHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.context?.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.readWanted {
            partner.readWanted = false
            partner.context?.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.context?.channel.isWritable ?? false {
            context.read()
        } else {
            readWanted = true
        }
    }
}
