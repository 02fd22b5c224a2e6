import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOWebSocket

/// Binance's live trade streams into a sink (a Kafka topic), for as long as its task runs.
///
/// It connects to the combined stream (`/stream?streams=btcusdt@trade/…`) over WebSocket (TLS
/// for `wss://`) and produces each trade's `data` object, byte for byte, keyed by its symbol
/// (`s`, upper case), which is the JSON the workers parse.
///
/// - Reconnects: on any connection failure, on a dropped or silent connection, and when the
///   server closes (Binance does at each connection's 24-hour mark), it reconnects after a
///   `ReconnectBackoff` delay with jitter and subscribes again. Each connect and disconnect is
///   logged at info and reported to `onEvent`.
/// - Gaps are never hidden: trade ids `t` are consecutive per symbol, so after a reconnect
///   (or if the exchange skips ids) the missing ids are reported as a `TradeGap` (event, log,
///   report). Those trades were not received and are not in Kafka.
/// - Duplicates: a trade whose id is at or below the symbol's last produced id is dropped, so
///   each trade id reaches the sink at most once.
/// - Frames that carry no trade (subscription replies, server errors) or a trade without a
///   usable `s`, `t` or `T` are counted and sampled, never produced.
/// - Stopping: cancel the task. The connection is closed, the sink is finished (flushed), and
///   the report returned with `cancelled` set.
public struct BinanceFeed: Sendable {
    public var config: BinanceFeedConfig
    public var logger: Logger
    /// Event loops for the connections (default: NIO's shared singleton group).
    public var group: any EventLoopGroup
    /// How long the final flush of the sink waits for outstanding deliveries.
    public var flushTimeoutMs: Int32 = 30_000

    public init(config: BinanceFeedConfig, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.config = config
        self.logger = logger
        self.group = group
    }

    /// Runs until the task is cancelled, then finishes the sink and returns what happened.
    /// - Parameter onEvent: called on the running task for each connect, disconnect, failed
    ///   attempt and gap, in order (e.g. to print them for an operator).
    /// - Throws: `IngestError` `.invalidArgument` if the TLS configuration is unusable (before
    ///   connecting); `.produceFailed` if the sink refuses a record (after flushing what it took).
    public func run<Sink: RecordSink>(into sink: Sink, onEvent: (BinanceFeedEvent) -> Void = { _ in }) async throws -> BinanceFeedReport {
        let sslContext: NIOSSLContext?
        do {
            sslContext = config.endpoint.usesTLS ? try NIOSSLContext(configuration: config.tls) : nil
        } catch {
            throw IngestError(.invalidArgument, "the TLS configuration for \(config.endpoint) is unusable: \(error)")
        }
        var session = FeedSession(config: config, logger: logger)
        var backoff = config.backoff
        var random = Xoshiro256StarStar(seed: config.jitterSeed ?? UInt64.random(in: .min ... .max))
        var attempt = 0
        logger.info("binance feed starting", metadata: ["url": "\(config.streamURL)", "symbols": "\(config.symbols.joined(separator: ","))"])

        do {
            while !Task.isCancelled {
                attempt += 1
                let frames: WebSocketDialer.Frames
                do {
                    frames = try await WebSocketDialer.connect(
                        endpoint: config.endpoint, target: config.requestTarget, sslContext: sslContext,
                        timeout: config.connectTimeout, keepalive: config.keepaliveInterval,
                        maximumFrameSize: config.maximumFrameSize, group: group)
                } catch {
                    if Task.isCancelled { break }
                    session.report.failedAttempts += 1
                    let delay = backoff.nextDelay(using: &random)
                    logger.info("binance feed cannot connect", metadata: [
                        "attempt": "\(attempt)", "error": "\(error)", "retry_in": "\(delay)",
                    ])
                    onEvent(.connectFailed(error, attempt: attempt, retryIn: delay))
                    try await Task.sleep(for: delay)
                    continue
                }
                attempt = 0
                let connection = session.connectionStarted()
                logger.info("binance feed connected", metadata: ["connection": "\(connection)", "url": "\(config.streamURL)"])
                onEvent(.connected(connection: connection))

                let (reason, trades) = try await session.stream(frames, into: sink, onEvent: onEvent)
                if trades > 0 { backoff.reset() }
                let delay: Duration? = Task.isCancelled ? nil : backoff.nextDelay(using: &random)
                logger.info("binance feed disconnected", metadata: [
                    "connection": "\(connection)", "reason": "\(reason)", "trades": "\(trades)",
                    "retry_in": "\(delay.map { "\($0)" } ?? "stopped")",
                ])
                onEvent(.disconnected(connection: connection, reason: reason, trades: trades, retryIn: delay))
                if let delay { try await Task.sleep(for: delay) }
            }
        } catch is CancellationError {
            // Stopped while waiting to reconnect.
        } catch {
            session.report.delivery = sink.finish(timeoutMs: flushTimeoutMs)
            logger.info("binance feed stopped by an error", metadata: ["error": "\(error)", "produced": "\(session.report.produced)"])
            throw error
        }
        session.report.cancelled = true
        session.report.delivery = sink.finish(timeoutMs: flushTimeoutMs)
        session.logProgress(final: true)
        return session.report
    }
}

/// The feed's state across connections: symbols, trade-id continuity, counters. Not Sendable:
/// it lives on the task that runs the feed.
private struct FeedSession {
    let config: BinanceFeedConfig
    let logger: Logger
    var report = BinanceFeedReport()
    private var symbols: [String] = []
    private var interner = KeyInterner()
    private var perSymbol: [Int] = []
    private var tracker = TradeIdTracker()
    private var connection = 0
    private var nextProgress: ContinuousClock.Instant

    init(config: BinanceFeedConfig, logger: Logger) {
        self.config = config
        self.logger = logger
        nextProgress = ContinuousClock.now.advanced(by: config.progressInterval)
        for symbol in config.symbols { _ = index(of: Array(symbol.utf8)) }
    }

    /// Counts a new connection and returns its 1-based number.
    mutating func connectionStarted() -> Int {
        connection += 1
        report.connections = connection
        tracker.connectionStarted()
        return connection
    }

    /// Reads frames until the connection ends or the task is cancelled; returns why it ended
    /// and how many trades it produced. Throws only when the sink refuses a record.
    mutating func stream<Sink: RecordSink>(
        _ frames: WebSocketDialer.Frames, into sink: Sink, onEvent: (BinanceFeedEvent) -> Void
    ) async throws -> (reason: String, trades: Int) {
        var reason = "the server closed the connection without a close frame"
        var trades = 0
        do {
            try await frames.executeThenClose { inbound, outbound in
                for try await frame in inbound {
                    switch frame.opcode {
                    case .text, .binary:
                        let data = frame.unmaskedData
                        if try data.withUnsafeReadableBytes({ try handle($0, sink: sink, onEvent: onEvent) }) { trades += 1 }
                    case .connectionClose:
                        var data = frame.unmaskedData
                        let code = data.readInteger(as: UInt16.self)
                        let text = data.readString(length: data.readableBytes) ?? ""
                        reason = "the server closed the connection (code \(code.map { "\($0)" } ?? "none")\(text.isEmpty ? "" : ", \"\(text)\""))"
                        // Answer the close handshake with the same status code, as RFC 6455 asks.
                        let echo = code.map { ByteBuffer(integer: $0) } ?? ByteBuffer()
                        try? await outbound.write(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: echo))
                        return
                    default:
                        break
                    }
                    if ContinuousClock.now >= nextProgress {
                        sink.poll()
                        logProgress(final: false)
                    }
                }
                if Task.isCancelled {
                    reason = "stopped"
                    try? await outbound.write(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: ByteBuffer(bytes: [0x03, 0xE8])))
                }
            }
        } catch let error as IngestError {
            throw error
        } catch {
            reason = Task.isCancelled ? "stopped" : "\(error)"
        }
        sink.poll()
        return (reason, trades)
    }

    /// One text frame: produces its trade unless it is a duplicate; reports gaps first.
    /// Returns true when a trade was produced.
    private mutating func handle<Sink: RecordSink>(
        _ raw: UnsafeRawBufferPointer, sink: Sink, onEvent: (BinanceFeedEvent) -> Void
    ) throws -> Bool {
        let bytes = raw.bindMemory(to: UInt8.self)
        switch CombinedStreamFrame.decode(bytes) {
        case .notATrade(let why):
            report.nonTradeFrames += 1
            sample(why, bytes)
            return false
        case .malformed(let why):
            report.malformedFrames += 1
            sample(why, bytes)
            return false
        case .trade(let trade):
            let symbol = index(of: bytes[trade.symbol])
            switch tracker.observe(symbol: symbol, id: trade.tradeId) {
            case .duplicate:
                report.duplicatesDropped += 1
                return false
            case .gap(let first, let last, let afterReconnect):
                let gap = TradeGap(symbol: symbols[symbol], first: first, last: last, afterReconnect: afterReconnect, connection: connection)
                report.gapCount += 1
                report.missedTrades += gap.count
                if report.gaps.count < BinanceFeedReport.gapSampleLimit { report.gaps.append(gap) }
                logger.info("binance feed gap: trades never received", metadata: [
                    "symbol": "\(gap.symbol)", "first_missing_id": "\(first)", "last_missing_id": "\(last)",
                    "missing": "\(gap.count)", "after_reconnect": "\(afterReconnect)", "connection": "\(connection)",
                ])
                onEvent(.gap(gap))
            case .first, .inOrder:
                break
            }
            do {
                try sink.send(key: UnsafeRawBufferPointer(rebasing: raw[trade.symbol]), value: UnsafeRawBufferPointer(rebasing: raw[trade.data]))
            } catch {
                throw IngestError(.produceFailed, "trade \(symbols[symbol]) t=\(trade.tradeId) was refused after \(report.produced) were produced: \(error)")
            }
            report.produced += 1
            perSymbol[symbol] += 1
            return true
        }
    }

    private mutating func index<Bytes: Sequence>(of symbol: Bytes) -> Int where Bytes.Element == UInt8 {
        let bytes = Array(symbol)
        let (id, isNew) = bytes.withUnsafeBufferPointer { interner.intern($0) }
        if isNew {
            symbols.append(String(decoding: bytes, as: UTF8.self))
            perSymbol.append(0)
        }
        return id
    }

    private mutating func sample(_ why: String, _ bytes: UnsafeBufferPointer<UInt8>) {
        let excerpt = String(decoding: bytes.prefix(120), as: UTF8.self)
        guard report.frameSamples.count < BinanceFeedReport.frameSampleLimit else { return }
        report.frameSamples.append("\(why): \(excerpt)")
        logger.info("binance feed skipped a frame", metadata: ["reason": "\(why)", "frame": "\(excerpt)"])
    }

    /// Logs trades per symbol, gaps and duplicates, and refreshes the report's per-symbol counts.
    mutating func logProgress(final: Bool) {
        for (index, count) in perSymbol.enumerated() { report.perSymbol[symbols[index]] = count }
        nextProgress = ContinuousClock.now.advanced(by: config.progressInterval)
        logger.info(final ? "binance feed stopped" : "binance feed progress", metadata: [
            "trades": "\(symbols.indices.map { "\(symbols[$0])=\(perSymbol[$0])" }.joined(separator: " "))",
            "connections": "\(report.connections)", "gaps": "\(report.gapCount)", "missed": "\(report.missedTrades)",
            "duplicates_dropped": "\(report.duplicatesDropped)", "skipped_frames": "\(report.nonTradeFrames + report.malformedFrames)",
        ])
    }
}
