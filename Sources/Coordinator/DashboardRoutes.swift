import Detection
import Protocol

// MARK: - Operator routes: dashboard, metrics, symbols and their windows

extension CoordinatorNode {
    /// Default and largest number of windows `GET /v1/symbols/{symbol}/windows` returns.
    public static let defaultWindowLimit = 360
    public static let maxWindowLimit = 5_000

    /// Answers the operator routes, or nil when `request` is for another route:
    /// - `GET /`: the dashboard (one self-contained HTML page, see `DashboardPage`).
    /// - `GET /metrics`: Prometheus text format (see `CoordinatorMetrics`).
    /// - `GET /v1/symbols`: `[SymbolSummary]`, by symbol.
    /// - `GET /v1/symbols/{symbol}/windows?limit=N&since=MS`: the newest N (default 360, at most
    ///   5000) windows of the symbol starting at or after `since`, oldest first, as `[WindowPoint]`;
    ///   an unknown symbol has none (an empty list, not 404: its first window may be on its way).
    /// Other methods on these paths get 405 naming the allowed one.
    nonisolated func operatorRoute(_ request: HTTPRequest) async throws -> HTTPResponse? {
        let path = request.path
        let windowsPrefix = RPCPath.symbols + "/"
        let isWindows = path.hasPrefix(windowsPrefix) && path.hasSuffix("/windows")
        guard path == "/" || path == "/index.html" || path == RPCPath.metrics || path == RPCPath.symbols || isWindows else {
            return nil
        }
        guard request.method == "GET" || request.method == "HEAD" else {
            var response = HTTPResponse.text("\(request.method) is not allowed on \(path); use GET\n", status: 405)
            response.headers.append(("allow", "GET"))
            return response
        }
        switch path {
        case "/", "/index.html":
            var response = HTTPResponse.text(DashboardPage.html, contentType: "text/html; charset=utf-8")
            response.headers.append(("cache-control", "no-store"))
            return response
        case RPCPath.metrics:
            return .text(try await metricsText(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case RPCPath.symbols:
            return .json(try await storage { try await store.symbolSummaries() })
        default:
            let symbol = String(path.dropFirst(windowsPrefix.count).dropLast("/windows".count))
            guard !symbol.isEmpty, !symbol.contains("/") else {
                return .text("no route for GET \(path); use \(RPCPath.symbols)/SYMBOL/windows\n", status: 404)
            }
            let (limit, since) = try Self.windowParameters(request.query)
            let windows = try await storage { try await store.recentWindows(symbol: symbol, limit: limit, sinceStartMs: since) }
            return .json(windows.map(WindowPoint.init))
        }
    }

    /// Refreshes the state gauges from the current status and renders every metric.
    func metricsText() async throws -> String {
        metrics.update(from: try await status())
        return metrics.render()
    }

    static func windowParameters(_ query: [String: String]) throws -> (limit: Int, since: Int64) {
        var limit = defaultWindowLimit
        var since = Int64.min
        if let text = query["limit"] {
            guard let value = Int(text), value >= 1 else {
                throw CoordinatorError(.badRequest, "GET \(RPCPath.symbols)/SYMBOL/windows: limit must be a positive integer, got \"\(text)\"")
            }
            limit = min(value, maxWindowLimit)
        }
        if let text = query["since"] {
            guard let value = Int64(text) else {
                throw CoordinatorError(.badRequest, "GET \(RPCPath.symbols)/SYMBOL/windows: since must be a window start in ms since the Unix epoch, got \"\(text)\"")
            }
            since = value
        }
        return (limit, since)
    }
}
