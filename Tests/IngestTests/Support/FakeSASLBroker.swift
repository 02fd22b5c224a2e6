import NIOCore
import NIOPosix
import Synchronization

/// A Kafka listener on 127.0.0.1 that requires SASL/PLAIN and refuses every credential, the way
/// a managed cluster answers a wrong password. librdkafka's mock cluster has no SASL, so this
/// speaks just enough of the Kafka protocol for librdkafka's connection start:
/// ApiVersions (v0-v3), SaslHandshake (v0-v1) and SaslAuthenticate (v0-v1), answered with
/// `SASL_AUTHENTICATION_FAILED` (58). It records the PLAIN payloads it received, so a test can
/// check which credentials reached the broker.
final class FakeSASLBroker: Sendable {
    let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let payloads: PayloadStore

    init() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        let payloads = PayloadStore()
        self.payloads = payloads
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(SASLRefuser(payloads: payloads))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress?.port ?? 0
    }

    var bootstrap: String { "127.0.0.1:\(port)" }

    /// The SASL/PLAIN payloads received: `authzid \0 username \0 password`.
    var receivedPlainPayloads: [[UInt8]] { payloads.all }

    func shutdown() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

private final class PayloadStore: Sendable {
    private let storage = Mutex<[[UInt8]]>([])
    func append(_ payload: [UInt8]) { storage.withLock { $0.append(payload) } }
    var all: [[UInt8]] { storage.withLock { $0 } }
}

/// Splits the stream into Kafka requests (a 4-byte big-endian size, then the request).
private struct KafkaFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self), buffer.readableBytes >= 4 + Int(size) else {
            return .needMoreData
        }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(size))!))
        return .continue
    }
}

/// Answers librdkafka's connection start and refuses the SASL credentials.
private final class SASLRefuser: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let apiVersions: Int16 = 18
    private static let saslHandshake: Int16 = 17
    private static let saslAuthenticate: Int16 = 36
    private static let authenticationFailed: Int16 = 58

    private let payloads: PayloadStore

    init(payloads: PayloadStore) { self.payloads = payloads }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var request = unwrapInboundIn(data)
        guard let apiKey = request.readInteger(as: Int16.self), let version = request.readInteger(as: Int16.self),
              let correlation = request.readInteger(as: Int32.self), let clientIdLength = request.readInteger(as: Int16.self)
        else {
            context.close(promise: nil)
            return
        }
        if clientIdLength > 0 { request.moveReaderIndex(forwardBy: Int(clientIdLength)) }
        var body = context.channel.allocator.buffer(capacity: 128)
        switch apiKey {
        case Self.apiVersions:
            let supported: [(Int16, Int16, Int16)] = [(Self.apiVersions, 0, 3), (Self.saslHandshake, 0, 1), (Self.saslAuthenticate, 0, 1)]
            body.writeInteger(Int16(0))  // error_code
            if version >= 3 {
                body.writeInteger(UInt8(supported.count + 1))  // compact array length + 1 (one-byte varint)
                for (key, minimum, maximum) in supported {
                    body.writeInteger(key)
                    body.writeInteger(minimum)
                    body.writeInteger(maximum)
                    body.writeInteger(UInt8(0))  // tagged fields
                }
                body.writeInteger(Int32(0))  // throttle_time_ms
                body.writeInteger(UInt8(0))  // tagged fields
            } else {
                body.writeInteger(Int32(supported.count))
                for (key, minimum, maximum) in supported {
                    body.writeInteger(key)
                    body.writeInteger(minimum)
                    body.writeInteger(maximum)
                }
                if version >= 1 { body.writeInteger(Int32(0)) }
            }
        case Self.saslHandshake:
            body.writeInteger(Int16(0))
            body.writeInteger(Int32(1))
            body.writeInteger(Int16(5))
            body.writeString("PLAIN")
        case Self.saslAuthenticate:
            if let length = request.readInteger(as: Int32.self), length > 0, let payload = request.readBytes(length: Int(length)) {
                payloads.append(payload)
            }
            let message = "Authentication failed: Invalid username or password"
            body.writeInteger(Self.authenticationFailed)
            body.writeInteger(Int16(message.utf8.count))
            body.writeString(message)
            body.writeInteger(Int32(0))  // auth_bytes: empty
            if version >= 1 { body.writeInteger(Int64(0)) }  // session_lifetime_ms
        default:
            context.close(promise: nil)
            return
        }
        var frame = context.channel.allocator.buffer(capacity: 8 + body.readableBytes)
        frame.writeInteger(Int32(4 + body.readableBytes))
        frame.writeInteger(correlation)
        frame.writeBuffer(&body)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }
}
