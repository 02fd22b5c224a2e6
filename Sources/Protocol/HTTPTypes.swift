import Foundation

/// An HTTP request as the server hands it to a handler, whichever HTTP version carried it.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The path without the query string, e.g. `/v1/anomalies`.
    public var path: String
    /// Decoded query parameters (`?symbol=BTCUSDT&since=...`); the last value wins.
    public var query: [String: String]
    /// Header names are lowercase.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The peer's address as the server saw it (e.g. `[IPv4]127.0.0.1/127.0.0.1:53012`), for logs;
    /// nil when unknown (requests built in tests or handed on by another handler).
    public var remoteAddress: String?

    public init(method: String, path: String, query: [String: String] = [:], headers: [(name: String, value: String)] = [], body: [UInt8] = [], remoteAddress: String? = nil) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// Decodes a JSON body, or throws `RPCError.badRequest` naming what was wrong.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try decodeBody(T.self) { RPCError.badRequest("\(method) \(path): body is not a valid \(T.self): \($0)") }
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names are lowercase.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func json<T: Encodable>(_ value: T, status: Int = 200) -> HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            let data = try encoder.encode(value)
            return HTTPResponse(status: status, headers: [("content-type", "application/json")], body: Array(data))
        } catch {
            return .text("cannot encode response: \(error)\n", status: 500)
        }
    }

    public static func text(_ text: String, status: Int = 200, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: [("content-type", contentType)], body: Array(text.utf8))
    }

    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try decodeBody(T.self) { RPCError.badResponse("response is not a valid \(T.self): \($0)") }
    }
}

/// What requests and responses share: lowercase headers and a body.
public protocol HTTPMessage {
    var headers: [(name: String, value: String)] { get }
    var body: [UInt8] { get }
}

extension HTTPMessage {
    /// The first value of a header, by case-insensitive name.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name == lower }?.value
    }

    func decodeBody<T: Decodable>(_ type: T.Type, error wrap: (Error) -> RPCError) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch {
            throw wrap(error)
        }
    }
}

extension HTTPRequest: HTTPMessage {}
extension HTTPResponse: HTTPMessage {}

/// Serves requests. Implementations are called concurrently from many connections.
public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest) async -> HTTPResponse

    /// Called by the server as soon as a request's headers have arrived, before its body is read,
    /// on the connection's event loop (so it must be quick and must not block). `head` has an
    /// empty body. Returning a response refuses the request with it: the body is never buffered
    /// and `handle` is not called (HTTP/2 resets the stream once the answer is out; HTTP/1.1
    /// closes the connection after it). The default admits everything.
    func admit(_ head: HTTPRequest) -> HTTPResponse?
}

extension HTTPHandler {
    public func admit(_ head: HTTPRequest) -> HTTPResponse? { nil }
}

/// Errors of the RPC layer, each with a message an operator can act on.
public enum RPCError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The peer could not be reached (refused, unreachable, timed out connecting).
    case unreachable(String)
    /// The call did not complete in time.
    case timeout(String)
    /// The connection broke mid-call.
    case connectionClosed(String)
    /// The server answered with a non-2xx status.
    case status(Int, String)
    case badRequest(String)
    case badResponse(String)

    public var description: String {
        switch self {
        case .unreachable(let m): "unreachable: \(m)"
        case .timeout(let m): "timed out: \(m)"
        case .connectionClosed(let m): "connection closed: \(m)"
        case .status(let code, let m): "HTTP \(code): \(m)"
        case .badRequest(let m): "bad request: \(m)"
        case .badResponse(let m): "bad response: \(m)"
        }
    }
}
