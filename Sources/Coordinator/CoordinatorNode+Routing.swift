import Protocol

// MARK: - HTTP routing

extension CoordinatorNode {
    /// Routes a request (see `RPCPath`). Bodies are decoded here, off the actor. Answers:
    /// 200 with JSON (fencing refusals included: `accepted: false`), 400 for a malformed body or
    /// query (the text says what was wrong), 404 for an unknown path or anomaly id, 405 for a wrong
    /// method, 500 when the database fails.
    public nonisolated func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let started = ContinuousClock.now
        defer { metrics.requestServed(method: request.method, path: request.path, duration: .now - started) }
        do {
            return try await route(request)
        } catch let error as CoordinatorError {
            return .text(error.description + "\n", status: error.httpStatus)
        } catch let error as RPCError {
            return .text(error.description + "\n", status: 400)
        } catch let error as AnomalyQuery.QueryError {
            return .text("GET \(RPCPath.anomalies): \(error.description)\n", status: 400)
        } catch {
            return .text("coordinator failed: \(error)\n", status: 500)
        }
    }

    private nonisolated func route(_ request: HTTPRequest) async throws -> HTTPResponse {
        if let response = try await operatorRoute(request) {
            return response
        }
        switch (request.method, request.path) {
        case ("POST", RPCPath.register):
            return .json(try await register(request.decode(RegisterRequest.self)))
        case ("POST", RPCPath.heartbeat):
            return .json(await heartbeat(try request.decode(HeartbeatRequest.self)))
        case ("POST", RPCPath.report):
            return .json(try await report(request.decode(ReportRequest.self)))
        case ("POST", RPCPath.checkpoint):
            return .json(try await checkpoint(request.decode(CheckpointRequest.self)))
        case ("POST", RPCPath.fetchCheckpoint):
            return .json(try await fetchCheckpoint(request.decode(FetchCheckpointRequest.self)))
        case ("POST", RPCPath.release):
            return .json(try await release(request.decode(ReleaseRequest.self)))
        case ("POST", RPCPath.deregister):
            return .json(await deregister(try request.decode(DeregisterRequest.self)))
        case ("GET", RPCPath.status):
            return .json(try await status())
        case ("GET", RPCPath.anomalies):
            return .json(try await anomalies(AnomalyQuery(parameters: request.query)))
        default:
            break
        }
        let prefix = RPCPath.anomalies + "/"
        if request.path.hasPrefix(prefix) {
            let rest = request.path.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
            switch (request.method, rest.count, rest.last) {
            case ("POST", 2, "ack") where !rest[0].isEmpty:
                let by = request.query["by"].flatMap { $0.isEmpty ? nil : $0 } ?? "anonymous"
                return .json(try await acknowledge(id: String(rest[0]), by: by))
            case ("GET", 1, _) where !rest[0].isEmpty:
                return .json(try await anomaly(id: String(rest[0])))
            case (_, 2, "ack"), (_, 1, _):
                return methodNotAllowed(request, allowed: rest.count == 2 ? "POST" : "GET")
            default:
                break
            }
        }
        let allowed: String? = switch request.path {
        case RPCPath.register, RPCPath.heartbeat, RPCPath.report, RPCPath.checkpoint, RPCPath.fetchCheckpoint, RPCPath.release,
             RPCPath.deregister: "POST"
        case RPCPath.status, RPCPath.anomalies: "GET"
        default: nil
        }
        if let allowed {
            return methodNotAllowed(request, allowed: allowed)
        }
        return .text("no route for \(request.method) \(request.path); the coordinator serves / (dashboard), \(RPCPath.status), \(RPCPath.anomalies), \(RPCPath.anomalies)/{id}/ack, \(RPCPath.symbols), \(RPCPath.symbols)/{symbol}/windows, \(RPCPath.metrics) and /rpc/*\n", status: 404)
    }

    private nonisolated func methodNotAllowed(_ request: HTTPRequest, allowed: String) -> HTTPResponse {
        var response = HTTPResponse.text("\(request.method) is not allowed on \(request.path); use \(allowed)\n", status: 405)
        response.headers.append(("allow", allowed))
        return response
    }
}
