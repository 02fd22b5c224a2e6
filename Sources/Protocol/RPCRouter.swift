import Foundation

/// An `HTTPHandler` that dispatches on method and path, for the coordinator's RPCs and API.
///
/// - Patterns are paths whose segments are literal or `{name}` (one whole segment, any value),
///   e.g. `/v1/anomalies/{id}/ack`; the values reach the handler as `PathParameters`. Trailing
///   slashes are ignored. Routes are tried in the order they were added; the first match wins.
/// - A path that matches no pattern gets 404; one that matches only for other methods gets 405
///   with an `allow` header. `HEAD` is served by the `GET` route (the server drops the body).
/// - A handler that throws gets an answer instead of a dropped request: `RPCError.badRequest`
///   → 400, `RPCError.status(code, text)` → that status, `CancellationError` → 503 (the client
///   went away), anything else → 500 with the error's description.
public struct RPCRouter: HTTPHandler {
    public typealias Handler = @Sendable (HTTPRequest, PathParameters) async throws -> HTTPResponse

    /// Values of a pattern's `{name}` segments, percent-decoded as the path was.
    public struct PathParameters: Sendable, Equatable {
        public var values: [String: String]

        public init(_ values: [String: String] = [:]) {
            self.values = values
        }

        public subscript(_ name: String) -> String? { values[name] }
    }

    private struct Route: Sendable {
        var method: String
        var segments: [Segment]
        var handler: Handler
    }

    private enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    private var routes: [Route] = []

    public init() {}

    /// Adds a route; `method` is matched case-sensitively (`GET`, `POST`, ...).
    public mutating func on(_ method: String, _ pattern: String, _ handler: @escaping Handler) {
        let segments = Self.segments(of: pattern).map { segment -> Segment in
            if segment.hasPrefix("{") && segment.hasSuffix("}") && segment.count > 2 {
                return .parameter(String(segment.dropFirst().dropLast()))
            }
            return .literal(String(segment))
        }
        routes.append(Route(method: method, segments: segments, handler: handler))
    }

    public mutating func get(_ pattern: String, _ handler: @escaping Handler) {
        on("GET", pattern, handler)
    }

    public mutating func post(_ pattern: String, _ handler: @escaping Handler) {
        on("POST", pattern, handler)
    }

    /// A JSON RPC: the body is decoded as `Req` (400 naming the problem if it is not one), the
    /// result is sent as JSON with status 200.
    public mutating func post<Req: Decodable & Sendable, Resp: Encodable & Sendable>(_ pattern: String, json handler: @escaping @Sendable (Req) async throws -> Resp) {
        on("POST", pattern) { request, _ in
            let decoded = try request.decode(Req.self)
            return HTTPResponse.json(try await handler(decoded))
        }
    }

    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let path = Self.segments(of: request.path)
        let method = request.method == "HEAD" ? "GET" : request.method
        var allowed: [String] = []
        for route in routes {
            guard let parameters = Self.match(route.segments, path) else { continue }
            guard route.method == method else {
                if !allowed.contains(route.method) { allowed.append(route.method) }
                continue
            }
            do {
                return try await route.handler(request, parameters)
            } catch {
                return Self.response(for: error, request)
            }
        }
        if !allowed.isEmpty {
            var response = HTTPResponse.text("\(request.method) is not allowed on \(request.path); use \(allowed.joined(separator: " or "))\n", status: 405)
            response.headers.append(("allow", allowed.joined(separator: ", ")))
            return response
        }
        return .text("no route for \(request.method) \(request.path)\n", status: 404)
    }

    private static func segments(of path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }

    private static func match(_ pattern: [Segment], _ path: [Substring]) -> PathParameters? {
        guard pattern.count == path.count else { return nil }
        var parameters = PathParameters()
        for (segment, value) in zip(pattern, path) {
            switch segment {
            case .literal(let literal):
                guard literal == value else { return nil }
            case .parameter(let name):
                parameters.values[name] = String(value)
            }
        }
        return parameters
    }

    private static func response(for error: any Error, _ request: HTTPRequest) -> HTTPResponse {
        switch error {
        case RPCError.badRequest(let message):
            return .text(message + "\n", status: 400)
        case RPCError.status(let code, let message):
            return .text(message + "\n", status: code)
        case is CancellationError:
            return .text("\(request.method) \(request.path) was cancelled\n", status: 503)
        default:
            return .text("\(request.method) \(request.path) failed: \(error)\n", status: 500)
        }
    }
}
