import Logging
import Protocol

/// The worker's metrics port: `GET /metrics` in Prometheus text format (HTTP/1.1 for Prometheus
/// and curl, HTTP/2 cleartext too), `GET /` a one-line pointer to it, anything else 404.
///
/// `start()` binds (port 0 picks a free one) and returns the address to advertise: the bound
/// port with the listen host, or with `advertisedHost` when listening on every interface.
public final class WorkerMetricsServer: Sendable {
    public let metrics: WorkerMetrics
    private let server: HTTPServer
    private let advertisedHost: String

    /// - Parameters:
    ///   - host: interface to listen on ("127.0.0.1" by default in `vigil worker`).
    ///   - advertisedHost: what the coordinator shows when `host` is a wildcard (0.0.0.0, ::).
    public init(metrics: WorkerMetrics, host: String, port: Int, advertisedHost: String, logger: Logger) {
        self.metrics = metrics
        self.advertisedHost = advertisedHost
        server = HTTPServer(host: host, port: port, handler: Handler(metrics: metrics), logger: logger)
    }

    /// Binds and returns `HOST:PORT` to advertise. Throws `HTTPServerError` when the bind fails.
    public func start() async throws -> String {
        let port = try await server.start()
        let host = server.host == "0.0.0.0" || server.host == "::" || server.host.isEmpty ? advertisedHost : server.host
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    public func shutdown() async {
        await server.shutdown()
    }

    struct Handler: HTTPHandler {
        let metrics: WorkerMetrics

        func handle(_ request: HTTPRequest) async -> HTTPResponse {
            switch (request.method, request.path) {
            case ("GET", RPCPath.metrics), ("HEAD", RPCPath.metrics):
                return .text(metrics.render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
            case ("GET", "/"):
                return .text("Vigil worker: Prometheus metrics at \(RPCPath.metrics)\n")
            case (_, RPCPath.metrics), (_, "/"):
                var response = HTTPResponse.text("\(request.method) is not allowed on \(request.path); use GET\n", status: 405)
                response.headers.append(("allow", "GET"))
                return response
            default:
                return .text("no route for \(request.method) \(request.path); this port serves \(RPCPath.metrics)\n", status: 404)
            }
        }
    }
}
