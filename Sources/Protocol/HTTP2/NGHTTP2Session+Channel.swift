import NIOCore

extension NGHTTP2Session {
    /// Output is written in pieces of this size so that writability is rechecked between them.
    static let writeChunkBytes = 256 * 1024

    /// Writes what the session has to send and flushes it once, stopping while the channel is not
    /// writable (the rest is produced on the next call, after `channelWritabilityChanged`).
    /// The caller must be on the channel's event loop.
    func writeOutput(to context: ChannelHandlerContext) throws {
        var wrote = false
        defer {
            if wrote { context.flush() }
        }
        var more = true
        while more && context.channel.isWritable {
            var buffer = context.channel.allocator.buffer(capacity: 4096)
            more = try send(into: &buffer, maxBytes: Self.writeChunkBytes)
            if buffer.readableBytes > 0 {
                context.write(NIOAny(buffer), promise: nil)
                wrote = true
            }
            if more {
                context.flush()
                wrote = false
            }
        }
    }
}
