/// Who may call what on the coordinator, decided from a request's method, path and
/// `authorization: Bearer <token>` header alone (so a server can decide as soon as the headers
/// arrive, before reading a body).
///
/// Endpoints fall in three classes (`AccessPolicy.Access`):
/// - **cluster**: every `/rpc/*` path (worker registration, heartbeats, reports, checkpoints,
///   releases). With a cluster token configured, only that token is accepted; the operator
///   token is not (an operator does not impersonate a worker).
/// - **operator**: every other request that is not `GET`/`HEAD`/`OPTIONS` (acknowledging an
///   anomaly, and anything added later that changes the cluster). With an operator token
///   configured, only that token is accepted. With no operator token but a cluster token, these
///   are refused outright: security is on, and nobody holds the token that would allow them.
/// - **read**: `GET`/`HEAD`/`OPTIONS` outside `/rpc/` (status, anomalies, symbols, metrics, the
///   dashboard). Open unless `protectReads`; then the operator token or the cluster token.
///
/// With no token configured at all everything is open (a development cluster on loopback).
///
/// A request without a token is answered 401 with `www-authenticate: Bearer`; one with a wrong
/// token (or the wrong kind of token) 403. The messages say which token is expected and where it
/// is configured, and never contain what was sent.
public struct AccessPolicy: Sendable, Equatable {
    public var clusterToken: SecretToken?
    public var operatorToken: SecretToken?
    public var protectReads: Bool

    public enum Access: String, Sendable, Equatable {
        case cluster
        case `operator`
        case read
    }

    /// The outcome for one request.
    public enum Decision: Sendable, Equatable {
        /// Serve it; `role` is the token that was presented and accepted (nil: open endpoint).
        case allow(role: Access?)
        case deny(Denial)
    }

    /// Why a request is refused, with the response to send.
    public struct Denial: Sendable, Equatable {
        public enum Reason: String, Sendable, Equatable {
            /// No token was sent (401).
            case missingToken = "missing_token"
            /// A token was sent, but not one this endpoint accepts (403).
            case wrongToken = "wrong_token"
            /// The endpoint needs a token the coordinator does not have configured (403).
            case notConfigured = "not_configured"
        }

        public var reason: Reason
        public var access: Access
        /// One line for the caller (and the log): what was expected and where to set it.
        public var message: String

        public var status: Int { reason == .missingToken ? 401 : 403 }

        /// The response to send: the message as text, with `www-authenticate` on a 401.
        public var response: HTTPResponse {
            var response = HTTPResponse.text(message + "\n", status: status)
            if status == 401 {
                response.headers.append(("www-authenticate", "Bearer realm=\"vigil\""))
            }
            return response
        }
    }

    public init(clusterToken: SecretToken? = nil, operatorToken: SecretToken? = nil, protectReads: Bool = false) {
        self.clusterToken = clusterToken
        self.operatorToken = operatorToken
        self.protectReads = protectReads
    }

    /// True when no token is configured: every request is allowed.
    public var isOpen: Bool { clusterToken == nil && operatorToken == nil }

    /// The class of an endpoint (see the type's documentation).
    public static func access(method: String, path: String) -> Access {
        if path == "/rpc" || path.hasPrefix("/rpc/") { return .cluster }
        switch method {
        case "GET", "HEAD", "OPTIONS": return .read
        default: return .operator
        }
    }

    /// Decides on a request from its method, path and headers (the body is not looked at).
    public func decide(_ request: HTTPRequest) -> Decision {
        let access = Self.access(method: request.method, path: request.path)
        let what = "\(request.method) \(request.path)"
        let presented = Self.bearerToken(in: request)
        switch access {
        case .cluster:
            guard let clusterToken else { return .allow(role: nil) }
            guard let presented else {
                return .deny(Denial(reason: .missingToken, access: access, message: "\(what) needs the cluster token: send `authorization: Bearer <token>` (workers read it from [security] cluster_token_file or \(SecurityConfig.clusterTokenVariable))"))
            }
            guard clusterToken.matches(presented) else {
                return .deny(Denial(reason: .wrongToken, access: access, message: "\(what): the token sent is not this cluster's token; give the worker the coordinator's cluster token ([security] cluster_token_file or \(SecurityConfig.clusterTokenVariable))"))
            }
            return .allow(role: .cluster)
        case .operator:
            if isOpen { return .allow(role: nil) }
            guard let operatorToken else {
                return .deny(Denial(reason: .notConfigured, access: access, message: "\(what) needs the operator token, and the coordinator has none configured; set [security] operator_token_file (or \(SecurityConfig.operatorTokenVariable)) on the coordinator"))
            }
            guard let presented else {
                return .deny(Denial(reason: .missingToken, access: access, message: "\(what) needs the operator token: send `authorization: Bearer <token>` (the CLI reads it from [security] operator_token_file, \(SecurityConfig.operatorTokenVariable) or --token-file)"))
            }
            guard operatorToken.matches(presented) else {
                return .deny(Denial(reason: .wrongToken, access: access, message: "\(what): the token sent is not the operator token; use the coordinator's operator token ([security] operator_token_file, \(SecurityConfig.operatorTokenVariable) or --token-file)"))
            }
            return .allow(role: .operator)
        case .read:
            guard protectReads, !isOpen else { return .allow(role: nil) }
            guard let presented else {
                return .deny(Denial(reason: .missingToken, access: access, message: "\(what) needs a token (reads are protected): send `authorization: Bearer <token>` with the operator token ([security] operator_token_file, \(SecurityConfig.operatorTokenVariable) or --token-file)"))
            }
            if let operatorToken, operatorToken.matches(presented) { return .allow(role: .operator) }
            if let clusterToken, clusterToken.matches(presented) { return .allow(role: .cluster) }
            return .deny(Denial(reason: .wrongToken, access: access, message: "\(what): the token sent is neither the operator token nor the cluster token"))
        }
    }

    /// The token of the first `authorization` header, when it uses the `Bearer` scheme (any case).
    static func bearerToken(in request: HTTPRequest) -> Substring.UTF8View? {
        guard let value = request.header("authorization") else { return nil }
        let trimmed = value.drop { $0 == " " || $0 == "\t" }
        guard trimmed.count > 7, trimmed.prefix(7).lowercased() == "bearer " else { return nil }
        let token = trimmed.dropFirst(7).drop { $0 == " " }
        let end = token.lastIndex { $0 != " " && $0 != "\t" }.map { token.index(after: $0) } ?? token.startIndex
        let exact = token[..<end]
        return exact.isEmpty ? nil : Substring(exact).utf8
    }
}
