import Logging

/// An `HTTPHandler` in front of another that enforces an `AccessPolicy`.
///
/// - `admit` decides when a request's headers arrive, so the server never buffers the body of a
///   request it refuses; `handle` decides again (for servers that do not call `admit`, and for
///   requests handed in directly), so both paths give the same answer.
/// - The `authorization` header is removed before the request reaches the wrapped handler: it
///   never sees a token, and so can never log one.
/// - Every refusal is counted (`stats`, and `vigil_http_rejected_total` when a registry is
///   given) and logged at info level with the method, path and peer (at most one line per
///   reason and second; the next line says how many were held back). So are requests the wrapped
///   handler answers 400 (a body that is not the message the endpoint expects: `malformed`).
public final class AccessGate: HTTPHandler {
    public let policy: AccessPolicy
    private let handler: any HTTPHandler
    private let counters = Locked(AccessStats())
    private let rejections: RejectionCounters
    private let log: ThrottledLog

    public init(policy: AccessPolicy, handler: any HTTPHandler, rejections: RejectionCounters = .disabled, logger: Logger) {
        self.policy = policy
        self.handler = handler
        self.rejections = rejections
        self.log = ThrottledLog(logger: logger)
    }

    /// Counters since creation.
    public var stats: AccessStats {
        counters.withLock { $0 }
    }

    public func admit(_ head: HTTPRequest) -> HTTPResponse? {
        switch policy.decide(head) {
        case .allow:
            return handler.admit(Self.withoutCredentials(head))
        case .deny(let denial):
            refused(denial, head)
            return denial.response
        }
    }

    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        switch policy.decide(request) {
        case .deny(let denial):
            refused(denial, request)
            return denial.response
        case .allow:
            counters.withLock { $0.allowed += 1 }
            let response = await handler.handle(Self.withoutCredentials(request))
            if response.status == 400 {
                counters.withLock { $0.malformed += 1 }
                rejections.count(.malformed)
                log.info("malformed", "refused a malformed request with 400", metadata: Self.metadata(request))
            }
            return response
        }
    }

    private func refused(_ denial: AccessPolicy.Denial, _ request: HTTPRequest) {
        let reason: RejectionReason
        switch denial.reason {
        case .missingToken:
            counters.withLock { $0.missingToken += 1 }
            reason = .missingToken
        case .wrongToken:
            counters.withLock { $0.wrongToken += 1 }
            reason = .wrongToken
        case .notConfigured:
            counters.withLock { $0.notConfigured += 1 }
            reason = .notConfigured
        }
        rejections.count(reason)
        var metadata = Self.metadata(request)
        metadata["status"] = "\(denial.status)"
        log.info(reason.rawValue, "refused a request: \(denial.message)", metadata: metadata)
    }

    private static func metadata(_ request: HTTPRequest) -> Logger.Metadata {
        ["method": "\(request.method)", "path": "\(request.path)", "peer": "\(request.remoteAddress ?? "?")"]
    }

    static func withoutCredentials(_ request: HTTPRequest) -> HTTPRequest {
        guard request.headers.contains(where: { $0.name == "authorization" }) else { return request }
        var stripped = request
        stripped.headers.removeAll { $0.name == "authorization" }
        return stripped
    }
}

/// What an `AccessGate` let through and refused, since it was created.
public struct AccessStats: Sendable, Equatable {
    /// Requests handed to the wrapped handler.
    public var allowed = 0
    /// Refused with 401: no token.
    public var missingToken = 0
    /// Refused with 403: a wrong token, or the wrong kind of token.
    public var wrongToken = 0
    /// Refused with 403: the endpoint's token is not configured on this server.
    public var notConfigured = 0
    /// Answered 400 by the wrapped handler.
    public var malformed = 0

    public init() {}
}

extension RPCError {
    /// The server refused the caller's credentials (401 or 403): retrying with the same token
    /// cannot succeed.
    public var isAccessDenied: Bool {
        if case .status(let code, _) = self { return code == 401 || code == 403 }
        return false
    }
}
