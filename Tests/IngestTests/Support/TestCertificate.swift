import Foundation
import NIOSSL
import XCTest

/// A self-signed certificate for `localhost` and 127.0.0.1, made at test time with the
/// `openssl` command line tool (nothing secret is kept in the repository).
struct TestCertificate {
    let certificatePath: String
    let keyPath: String

    init(in directory: URL) throws {
        certificatePath = directory.appendingPathComponent("cert.pem").path
        keyPath = directory.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", keyPath, "-out", certificatePath, "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else {
            throw XCTSkip("openssl could not make a test certificate (exit \(openssl.terminationStatus)); install openssl")
        }
    }

    /// A TLS server configuration presenting this certificate.
    func serverConfiguration() throws -> TLSConfiguration {
        TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(file: certificatePath, format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem)))
    }

    /// A TLS client configuration that trusts only this certificate.
    func trustingClientConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates([try NIOSSLCertificate(file: certificatePath, format: .pem)])
        return configuration
    }
}
