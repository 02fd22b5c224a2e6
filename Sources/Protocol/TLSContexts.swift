import Foundation
import NIOSSL

/// TLS for `HTTPServer`: the server's certificate and key, and optionally the CA that client
/// certificates are checked against.
///
/// - Offers ALPN `h2` and `http/1.1`, TLS 1.2 or later. The connection is then sniffed like a
///   cleartext one (HTTP/2 preface or HTTP/1.1), so both protocols work over TLS too.
/// - With a CA: a client that presents a certificate must present one signed by that CA; with
///   `requiresClientCertificate` a client that presents none is refused during the handshake.
///   Client certificates are not checked against a host name.
public struct ServerTLS: Sendable {
    let context: NIOSSLContext
    /// Client certificates are verified against a CA.
    public let verifiesClientCertificates: Bool
    /// A client without a certificate is refused (mutual TLS).
    public let requiresClientCertificate: Bool

    /// Loads the PEM files.
    /// - Throws: `SecurityConfigError` naming the setting and file that cannot be used.
    public init(certificate: String, key: String, ca: String?, requireClientCertificate: Bool) throws(SecurityConfigError) {
        let chain = try TLSFiles.certificates(certificate, key: "security.tls_certificate")
        let privateKey = try TLSFiles.privateKey(key, key: "security.tls_key")
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["h2", "http/1.1"]
        if let ca {
            configuration.trustRoots = .certificates(try TLSFiles.certificates(ca, key: "security.tls_ca"))
            configuration.certificateVerification = requireClientCertificate ? .noHostnameVerification : .optionalVerification
        } else if requireClientCertificate {
            throw SecurityConfigError(source: "security.require_client_certificate", problem: "needs security.tls_ca, the CA that client certificates must be signed by")
        }
        context = try TLSFiles.context(configuration, certificate: certificate, key: key)
        verifiesClientCertificates = ca != nil
        requiresClientCertificate = requireClientCertificate
    }
}

/// TLS for `RPCClient`: the CA the server's certificate must chain to (the system's trust roots
/// when none is given), and optionally a client certificate for mutual TLS.
///
/// - Offers ALPN `h2`, TLS 1.2 or later.
/// - The server's certificate must name the host the client connects to: a DNS name in its
///   subject alternative names, or, when connecting to an IP address, that address as an IP
///   subject alternative name.
public struct ClientTLS: Sendable {
    let context: NIOSSLContext
    /// A client certificate is presented to servers that ask for one.
    public let presentsCertificate: Bool

    /// Loads the PEM files.
    /// - Throws: `SecurityConfigError` naming the setting and file that cannot be used.
    public init(ca: String?, certificate: String?, key: String?) throws(SecurityConfigError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["h2"]
        configuration.certificateVerification = .fullVerification
        if let ca {
            configuration.trustRoots = .certificates(try TLSFiles.certificates(ca, key: "security.tls_ca"))
        }
        switch (certificate, key) {
        case (let certificate?, let key?):
            configuration.certificateChain = try TLSFiles.certificates(certificate, key: "security.tls_certificate").map { .certificate($0) }
            configuration.privateKey = .privateKey(try TLSFiles.privateKey(key, key: "security.tls_key"))
            context = try TLSFiles.context(configuration, certificate: certificate, key: key)
            presentsCertificate = true
        case (nil, nil):
            context = try TLSFiles.context(configuration, certificate: nil, key: nil)
            presentsCertificate = false
        case (_?, nil):
            throw SecurityConfigError(source: "security.tls_certificate", problem: "set without security.tls_key; set both (the certificate and its key) or neither")
        case (nil, _?):
            throw SecurityConfigError(source: "security.tls_key", problem: "set without security.tls_certificate; set both (the certificate and its key) or neither")
        }
    }
}

/// Reading PEM files with errors that name the setting and the file.
enum TLSFiles {
    /// PEM files larger than this are refused (a certificate chain is a few KiB).
    static let maxFileBytes = 1 << 20

    static func read(_ path: String, key: String) throws(SecurityConfigError) -> [UInt8] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw SecurityConfigError(source: key, problem: "cannot read \(path): \(SecretToken.describe(error)); check the path and that this user may read it")
        }
        guard data.count <= maxFileBytes else {
            throw SecurityConfigError(source: key, problem: "\(path) is larger than \(maxFileBytes) bytes; expected a PEM file")
        }
        return Array(data)
    }

    static func certificates(_ path: String, key: String) throws(SecurityConfigError) -> [NIOSSLCertificate] {
        let bytes = try read(path, key: key)
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw SecurityConfigError(source: key, problem: "\(path) is not a PEM certificate file (\(error)); expected -----BEGIN CERTIFICATE----- blocks")
        }
        guard !certificates.isEmpty else {
            throw SecurityConfigError(source: key, problem: "\(path) holds no certificate; expected -----BEGIN CERTIFICATE----- blocks")
        }
        return certificates
    }

    static func privateKey(_ path: String, key: String) throws(SecurityConfigError) -> NIOSSLPrivateKey {
        let bytes = try read(path, key: key)
        do {
            return try NIOSSLPrivateKey(bytes: bytes, format: .pem)
        } catch {
            throw SecurityConfigError(source: key, problem: "\(path) is not an unencrypted PEM private key (\(error)); expected -----BEGIN PRIVATE KEY----- (or an RSA/EC key), without a passphrase")
        }
    }

    static func context(_ configuration: TLSConfiguration, certificate: String?, key: String?) throws(SecurityConfigError) -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            if let certificate, let key {
                throw SecurityConfigError(source: "security.tls_key", problem: "cannot use the key \(key) with the certificate \(certificate) (\(error)); check that the key belongs to the certificate")
            }
            throw SecurityConfigError(source: "security", problem: "cannot set up TLS: \(error)")
        }
    }
}
