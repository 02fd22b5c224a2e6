import ArgumentParser
import Foundation
import Logging
import Protocol

/// Flags that override `[security]` for a command that connects to the coordinator (a worker,
/// `status`, `anomalies`, `ack`). There is deliberately no flag taking a token itself: a command
/// line is visible to every user of the host (`ps`); use a file or the environment.
struct SecurityOptions: ParsableArguments {
    @Option(name: .long, help: "CA certificate (PEM) the coordinator's certificate must be signed by; turns TLS on. Overrides security.tls_ca.")
    var ca: String?

    @Option(name: .long, help: "File holding the token to send: the cluster token for a worker, the operator token for the CLI. Overrides [security] token files and VIGIL_CLUSTER_TOKEN / VIGIL_OPERATOR_TOKEN.")
    var tokenFile: String?

    @Option(name: .long, help: "Client certificate (PEM) for mutual TLS. Overrides security.tls_certificate.")
    var tlsCertificate: String?

    @Option(name: .long, help: "Private key (PEM) of --tls-certificate. Overrides security.tls_key.")
    var tlsKey: String?

    /// Which token a client sends.
    enum Role {
        /// The cluster token.
        case worker
        /// The operator token, else the cluster token (reads accept either).
        case `operator`
    }

    /// TLS settings and the token for a client of the coordinator: `security` (from cluster.conf
    /// and `VIGIL_*`) with these flags applied.
    /// - Throws: `ValidationError` naming the setting or file that cannot be used.
    func client(_ security: SecurityConfig, role: Role, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ClientSecurity {
        var security = security
        if let ca { security.tlsCA = ca }
        if let tlsCertificate { security.tlsCertificate = tlsCertificate }
        if let tlsKey { security.tlsKey = tlsKey }
        do throws(SecurityConfigError) {
            let tls = try security.makeClientTLS()
            let token: SecretToken?
            if let tokenFile {
                token = try SecretToken.read(file: tokenFile, key: "--token-file")
            } else {
                let tokens = try security.loadTokens(environment: environment)
                token = role == .worker ? tokens.clusterToken : (tokens.operatorToken ?? tokens.clusterToken)
            }
            return ClientSecurity(tls: tls, token: token)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// How a client connects to the coordinator: TLS (nil: cleartext) and the token it sends (nil:
/// none). Printing it never shows the token.
struct ClientSecurity: Sendable {
    var tls: ClientTLS?
    var token: SecretToken?

    static let none = ClientSecurity(tls: nil, token: nil)
}

/// The coordinator's side of `[security]`: its TLS, its access rules, and the counters of what it
/// refuses, loaded once at start.
struct CoordinatorSecurity {
    let tls: ServerTLS?
    let policy: AccessPolicy

    /// Loads the certificate, key, CA and tokens `security` names; logs the warnings of an
    /// unprotected or half-protected coordinator listening on `host`.
    /// - Throws: `CLIError` naming the setting or file that cannot be used.
    static func load(_ security: SecurityConfig, host: String, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> CoordinatorSecurity {
        let result: CoordinatorSecurity
        let warnings: [String]
        do throws(SecurityConfigError) {
            let tokens = try security.loadTokens(environment: environment)
            result = CoordinatorSecurity(tls: try security.makeServerTLS(), policy: try security.accessPolicy(tokens: tokens))
            warnings = tokens.warnings
        } catch {
            throw CLIError(error.description)
        }
        for warning in warnings {
            logger.warning("\(warning)")
        }
        let loopback = Self.isLoopback(host)
        if result.policy.isOpen && !loopback {
            logger.warning("the coordinator listens on \(host) without tokens: anyone who can reach it can register a worker (and receive the Kafka settings, credentials included) and acknowledge anomalies; set [security] cluster_token_file and operator_token_file")
        } else if result.tls == nil && !result.policy.isOpen && !loopback {
            logger.warning("tokens travel in cleartext to \(host): set [security] tls_certificate and tls_key to protect them")
        }
        logger.info("security", metadata: [
            "tls": "\(result.tls.map { $0.requiresClientCertificate ? "mutual (client certificate required)" : "on" } ?? "off")",
            "cluster_token": "\(result.policy.clusterToken == nil ? "off" : "required on /rpc")",
            "operator_token": "\(result.policy.operatorToken == nil ? (result.policy.isOpen ? "off" : "not configured: mutating calls refused") : "required on mutating calls")",
            "reads": "\(result.policy.protectReads ? "token required" : "open")",
        ])
        return result
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
