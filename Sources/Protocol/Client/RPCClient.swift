import Foundation
import Logging
import NIOCore
import NIOPosix

/// An HTTP/2 client for one server, `HOST:PORT` (cleartext with prior knowledge, or TLS with ALPN
/// `h2`), safe to use from many tasks at once: concurrent calls share one connection as separate
/// streams.
///
/// - With `tls`, the server's certificate must chain to the configured CA and name the host
///   dialled; a failed handshake fails the call with `.unreachable` saying what to check. With
///   `token`, every request carries `authorization: Bearer <token>` (the token never appears in
///   errors or logs); a server that refuses it answers 401/403 (`RPCError.isAccessDenied`).
/// - Connects lazily on the first call. If the connection fails or closes, the calls on it fail
///   and the next call connects again; there is no background reconnect loop and no retry of a
///   call the server may have processed. Calls the server provably did not process (refused
///   streams, streams above a GOAWAY) are resent transparently, on a new connection if needed.
/// - Every call has a timeout that covers connecting, waiting for a free stream and the response;
///   on timeout or task cancellation the stream is reset so the server can stop working on it.
///   After a timeout the connection is probed with a PING; if nothing comes back within
///   `connectTimeout` (server host gone without closing the socket) it is closed, so the next
///   call reconnects instead of waiting on a dead connection.
/// - Errors are `RPCError`s: `.unreachable("cannot reach HOST:PORT: connection refused ...")`
///   when no connection could be made, `.timeout`, `.connectionClosed` when the connection broke
///   mid-call (every call on it fails at once, none hangs), `.status(code, body)` for non-2xx
///   answers to `call`/`get`, `.badResponse` for undecodable ones. Task cancellation throws
///   `CancellationError`.
/// - After `close()` every call fails with `.connectionClosed`.
///
/// All work happens on one event loop of `group`, chosen at creation: state, connections,
/// timeouts. A client talking to several servers uses one `RPCClient` per server.
public final class RPCClient: Sendable {
    /// Where the client connects.
    public let endpoint: HostAndPort
    /// True when the client speaks TLS.
    public let usesTLS: Bool
    private let authorization: String?
    private let eventLoop: any EventLoop
    private let core: NIOLoopBoundBox<RPCClientCore>

    /// - Parameters:
    ///   - connectTimeout: how long to wait for the TCP connection (the HTTP/2 handshake then
    ///     counts against the call's own timeout), and how long a connection on which a call
    ///     timed out gets to answer a PING before it is considered dead and closed.
    ///   - maxResponseBytes: larger response bodies fail the call with `.badResponse` (the
    ///     stream is reset). Default 256 MiB.
    ///   - tls: connect with TLS, with these settings; nil (the default) connects in cleartext.
    ///   - token: sent as `authorization: Bearer <token>` with every request.
    public init(
        host: String, port: Int, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: Duration = .seconds(2), maxResponseBytes: Int = 256 << 20, tls: ClientTLS? = nil, token: SecretToken? = nil
    ) {
        let endpoint = HostAndPort(host: host, port: port)
        var logger = logger
        logger[metadataKey: "rpc.server"] = "\(endpoint)"
        self.endpoint = endpoint
        self.usesTLS = tls != nil
        self.authorization = token?.authorizationValue
        self.eventLoop = group.next()
        let core = RPCClientCore(endpoint: endpoint, eventLoop: eventLoop, connectTimeout: connectTimeout, maxResponseBytes: maxResponseBytes, tls: tls, logger: logger)
        self.core = NIOLoopBoundBox.makeBoxSendingValue(core, eventLoop: eventLoop)
    }

    /// A client for `"HOST:PORT"` (IPv6 in brackets).
    /// - Throws: `InvalidAddressError` saying what is wrong with the address.
    public convenience init(address: String, logger: Logger, tls: ClientTLS? = nil, token: SecretToken? = nil) throws {
        let parsed = try HostAndPort(parsing: address)
        self.init(host: parsed.host, port: parsed.port, logger: logger, tls: tls, token: token)
    }

    deinit {
        let core = self.core
        eventLoop.execute { _ = core.value.close() }
    }

    /// Sends one request and returns the response, whatever its status.
    /// - Parameters:
    ///   - path: path and optional query string, sent as is (see `RequestTarget.build`).
    ///   - headers: extra request headers (names are lowercased; `host` and hop-by-hop ones are dropped).
    public func request(method: String, path: String, headers: [(name: String, value: String)] = [], body: [UInt8] = [], timeout: Duration = .seconds(10)) async throws -> HTTPResponse {
        let promise = eventLoop.makePromise(of: HTTPResponse.self)
        var headers = headers
        if let authorization, !headers.contains(where: { $0.name.lowercased() == "authorization" }) {
            headers.append(("authorization", authorization))
        }
        let request = OutgoingRequest(method: method, target: path, headers: headers, body: body)
        let core = self.core
        eventLoop.execute {
            core.value.start(request, promise: promise, timeout: timeout)
        }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            // Holding `promise` here keeps its identity (the key of the call) from being reused.
            promise.futureResult.eventLoop.execute {
                core.value.cancel(promise)
            }
        }
    }

    /// JSON call: POSTs `request` encoded as JSON to `path` and decodes the 2xx answer.
    /// - Throws: `RPCError.status(code, body text)` for a non-2xx answer, `.badResponse` when the
    ///   answer is not a `Resp`, `.badRequest` when `request` cannot be encoded, and the transport
    ///   errors of `request(method:path:...)`.
    public func call<Req: Encodable & Sendable, Resp: Decodable & Sendable>(_ path: String, _ request: Req, timeout: Duration = .seconds(10)) async throws -> Resp {
        let body: Data
        do {
            body = try JSONEncoder().encode(request)
        } catch {
            throw RPCError.badRequest("cannot encode \(Req.self) for POST \(path): \(error)")
        }
        let response = try await self.request(method: "POST", path: path, headers: Self.jsonHeaders, body: Array(body), timeout: timeout)
        return try Self.decode(response)
    }

    /// JSON GET of `path` with `query` (percent-encoded, keys sorted); decodes the 2xx answer.
    /// - Throws: as `call`.
    public func get<Resp: Decodable & Sendable>(_ path: String, query: [String: String] = [:], timeout: Duration = .seconds(10)) async throws -> Resp {
        let response = try await request(method: "GET", path: RequestTarget.build(path: path, query: query), headers: [("accept", "application/json")], timeout: timeout)
        return try Self.decode(response)
    }

    /// Fails the calls in progress with `.connectionClosed` and closes the connections. Idempotent.
    public func close() async {
        let core = self.core
        try? await eventLoop.flatSubmit { core.value.close() }.get()
    }

    private static let jsonHeaders: [(name: String, value: String)] = [("content-type", "application/json"), ("accept", "application/json")]

    private static func decode<Resp: Decodable>(_ response: HTTPResponse) throws -> Resp {
        guard (200..<300).contains(response.status) else {
            throw RPCError.status(response.status, String(decoding: response.body, as: UTF8.self))
        }
        return try response.decode(Resp.self)
    }
}
