import Foundation

/// The `[security]` section of cluster.conf, as written: file paths and switches. Nothing is read
/// from disk until one of the `load…`/`make…` methods is called, so a configuration can be checked
/// (`validate()`) and compared without touching secrets.
///
/// One section serves every process, each taking what its role needs:
/// - The coordinator serves TLS when `tlsCertificate` and `tlsKey` are set; with `tlsCA` it also
///   verifies client certificates (optional, or required with `requireClientCertificate`:
///   mutual TLS). It checks the cluster token on every `/rpc/*` call and the operator token on
///   every other mutating call (and on reads with `protectReads`); see `AccessPolicy`.
/// - Workers and the CLI connect with TLS when `tlsCA` or `tlsCertificate` is set: `tlsCA`
///   verifies the coordinator (the system's trust roots when it is unset), and `tlsCertificate`
///   with `tlsKey` is presented as their client certificate. Workers send the cluster token; the
///   CLI sends the operator token (else the cluster token).
/// - Tokens come from `VIGIL_CLUSTER_TOKEN` / `VIGIL_OPERATOR_TOKEN` when set (the environment
///   overrides the file, as everywhere in cluster.conf), else from the token files.
public struct SecurityConfig: Sendable, Equatable {
    /// PEM certificate chain this process presents (server certificate on the coordinator,
    /// client certificate on workers and the CLI).
    public var tlsCertificate: String?
    /// PEM private key of `tlsCertificate` (unencrypted).
    public var tlsKey: String?
    /// PEM CA certificate(s) that peers' certificates must chain to.
    public var tlsCA: String?
    /// Coordinator: refuse TLS clients without a certificate signed by `tlsCA` (mutual TLS).
    public var requireClientCertificate = false
    /// File holding the cluster token (workers ↔ coordinator RPC).
    public var clusterTokenFile: String?
    /// File holding the operator token (mutating API calls such as ack; reads with `protectReads`).
    public var operatorTokenFile: String?
    /// Coordinator: require a token (operator or cluster) on read-only endpoints too.
    public var protectReads = false

    /// Environment variables holding the tokens themselves (they override the token files).
    public static let clusterTokenVariable = "VIGIL_CLUSTER_TOKEN"
    public static let operatorTokenVariable = "VIGIL_OPERATOR_TOKEN"

    public init(
        tlsCertificate: String? = nil, tlsKey: String? = nil, tlsCA: String? = nil, requireClientCertificate: Bool = false,
        clusterTokenFile: String? = nil, operatorTokenFile: String? = nil, protectReads: Bool = false
    ) {
        self.tlsCertificate = tlsCertificate
        self.tlsKey = tlsKey
        self.tlsCA = tlsCA
        self.requireClientCertificate = requireClientCertificate
        self.clusterTokenFile = clusterTokenFile
        self.operatorTokenFile = operatorTokenFile
        self.protectReads = protectReads
    }

    /// A server built from this configuration speaks TLS.
    public var servesTLS: Bool { tlsCertificate != nil && tlsKey != nil }

    /// A client built from this configuration speaks TLS.
    public var connectsWithTLS: Bool { tlsCA != nil || tlsCertificate != nil }

    /// Checks combinations that cannot work, without reading any file.
    /// - Throws: `SecurityConfigError` naming the setting and what to add or remove.
    public func validate() throws(SecurityConfigError) {
        if tlsKey != nil && tlsCertificate == nil {
            throw SecurityConfigError(source: "security.tls_key", problem: "set without security.tls_certificate; set both (the certificate and its key) or neither")
        }
        if tlsCertificate != nil && tlsKey == nil {
            throw SecurityConfigError(source: "security.tls_certificate", problem: "set without security.tls_key; set both (the certificate and its key) or neither")
        }
        if requireClientCertificate && tlsCA == nil {
            throw SecurityConfigError(source: "security.require_client_certificate", problem: "needs security.tls_ca, the CA that client certificates must be signed by")
        }
        if requireClientCertificate && tlsCertificate == nil {
            throw SecurityConfigError(source: "security.require_client_certificate", problem: "needs TLS: set security.tls_certificate and security.tls_key too")
        }
        for (key, path) in [("security.tls_certificate", tlsCertificate), ("security.tls_key", tlsKey), ("security.tls_ca", tlsCA),
                            ("security.cluster_token_file", clusterTokenFile), ("security.operator_token_file", operatorTokenFile)]
        where path?.isEmpty == true {
            throw SecurityConfigError(source: key, problem: "is an empty path; remove the line or give a file")
        }
    }

    // MARK: - Tokens

    /// Loads the tokens: from `VIGIL_CLUSTER_TOKEN` / `VIGIL_OPERATOR_TOKEN` when set, else from
    /// the token files when configured.
    /// - Throws: `SecurityConfigError` when a file cannot be read or a token is not valid (the
    ///   message never contains the token).
    public func loadTokens(environment: [String: String] = ProcessInfo.processInfo.environment) throws(SecurityConfigError) -> SecurityTokens {
        var tokens = SecurityTokens()
        tokens.clusterToken = try Self.token(variable: Self.clusterTokenVariable, file: clusterTokenFile, key: "security.cluster_token_file", environment: environment, warnings: &tokens.warnings)
        tokens.operatorToken = try Self.token(variable: Self.operatorTokenVariable, file: operatorTokenFile, key: "security.operator_token_file", environment: environment, warnings: &tokens.warnings)
        if let cluster = tokens.clusterToken, let operatorToken = tokens.operatorToken, cluster == operatorToken {
            throw SecurityConfigError(source: "security.operator_token_file", problem: "the operator token is the same as the cluster token; use two different tokens, so that a worker's token cannot acknowledge anomalies")
        }
        return tokens
    }

    /// The coordinator's access rules: these tokens, and `protectReads`.
    /// - Throws: `SecurityConfigError` when `protectReads` is set but no token is configured.
    public func accessPolicy(tokens: SecurityTokens) throws(SecurityConfigError) -> AccessPolicy {
        if protectReads && tokens.clusterToken == nil && tokens.operatorToken == nil {
            throw SecurityConfigError(source: "security.protect_reads", problem: "is true but no token is configured; set security.operator_token_file (or \(Self.operatorTokenVariable))")
        }
        return AccessPolicy(clusterToken: tokens.clusterToken, operatorToken: tokens.operatorToken, protectReads: protectReads)
    }

    private static func token(variable: String, file: String?, key: String, environment: [String: String], warnings: inout [String]) throws(SecurityConfigError) -> SecretToken? {
        if let value = environment[variable] {
            return try SecretToken(value.trimmingCharacters(in: .whitespacesAndNewlines), source: variable)
        }
        guard let file else { return nil }
        let token = try SecretToken.read(file: file, key: key)
        if let attributes = try? FileManager.default.attributesOfItem(atPath: file),
           let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0 {
            warnings.append("\(key): \(file) can be read by other users (mode \(String(mode & 0o777, radix: 8))); restrict it with `chmod 600 \(file)`")
        }
        return token
    }

    // MARK: - TLS

    /// The server side of TLS, or nil when this configuration does not serve TLS.
    /// - Throws: `SecurityConfigError` naming the file that cannot be used and why.
    public func makeServerTLS() throws(SecurityConfigError) -> ServerTLS? {
        try validate()
        guard let tlsCertificate, let tlsKey else { return nil }
        return try ServerTLS(certificate: tlsCertificate, key: tlsKey, ca: tlsCA, requireClientCertificate: requireClientCertificate)
    }

    /// The client side of TLS, or nil when this configuration connects in cleartext.
    /// - Throws: `SecurityConfigError` naming the file that cannot be used and why.
    public func makeClientTLS() throws(SecurityConfigError) -> ClientTLS? {
        try validate()
        guard connectsWithTLS else { return nil }
        return try ClientTLS(ca: tlsCA, certificate: tlsCertificate, key: tlsKey)
    }
}

/// The tokens a process holds, after `SecurityConfig.loadTokens`. Printing it never shows them.
public struct SecurityTokens: Sendable, Equatable {
    public var clusterToken: SecretToken?
    public var operatorToken: SecretToken?
    /// Things worth a warning in the log (e.g. a token file other users can read).
    public var warnings: [String] = []

    public init(clusterToken: SecretToken? = nil, operatorToken: SecretToken? = nil) {
        self.clusterToken = clusterToken
        self.operatorToken = operatorToken
    }
}
