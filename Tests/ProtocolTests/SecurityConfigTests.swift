import Foundation
import XCTest
@testable import Protocol

/// The test certificates (Tests/Fixtures/tls, made by its make-certs.sh; for tests only).
enum TLSFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tls")

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    static var ca: String { path("ca.pem") }
    static var serverCertificate: String { path("server.pem") }
    static var serverKey: String { path("server-key.pem") }
    static var clientCertificate: String { path("client.pem") }
    static var clientKey: String { path("client-key.pem") }
    static var rogueCA: String { path("rogue-ca.pem") }
    static var rogueClientCertificate: String { path("rogue-client.pem") }
    static var rogueClientKey: String { path("rogue-client-key.pem") }
}

/// `[security]` settings: combinations, token loading, PEM loading and their error messages.
final class SecurityConfigTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-security-config-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func write(_ text: String, _ name: String, mode: Int = 0o600) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    private func message(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testImpossibleCombinationsAreRefusedWithTheSettingToFix() {
        XCTAssertEqual(message { try SecurityConfig(tlsKey: "k.pem").validate() },
                       "security.tls_key: set without security.tls_certificate; set both (the certificate and its key) or neither")
        XCTAssertTrue(message { try SecurityConfig(tlsCertificate: "c.pem").validate() }.hasPrefix("security.tls_certificate: set without security.tls_key"))
        XCTAssertTrue(message { try SecurityConfig(tlsCertificate: "c", tlsKey: "k", requireClientCertificate: true).validate() }
            .hasPrefix("security.require_client_certificate: needs security.tls_ca"))
        XCTAssertTrue(message { try SecurityConfig(tlsCA: "ca", requireClientCertificate: true).validate() }
            .contains("needs TLS: set security.tls_certificate"))
        XCTAssertTrue(message { try SecurityConfig(clusterTokenFile: "").validate() }.hasPrefix("security.cluster_token_file: is an empty path"))
        XCTAssertEqual(message { try SecurityConfig().validate() }, "no error")
        XCTAssertFalse(SecurityConfig().servesTLS)
        XCTAssertFalse(SecurityConfig().connectsWithTLS)
        XCTAssertTrue(SecurityConfig(tlsCA: "ca").connectsWithTLS, "a CA alone: a client verifying the server")
        XCTAssertFalse(SecurityConfig(tlsCA: "ca").servesTLS)
    }

    func testTokensFromFilesAndFromTheEnvironment() throws {
        let clusterFile = try write("cluster-token-from-file-0001\n", "cluster.token")
        let operatorFile = try write("  operator-token-from-file-0002  \n\n", "operator.token")
        let config = SecurityConfig(clusterTokenFile: clusterFile, operatorTokenFile: operatorFile)

        let fromFiles = try config.loadTokens(environment: [:])
        XCTAssertEqual(fromFiles.clusterToken?.authorizationValue, "Bearer cluster-token-from-file-0001", "the final newline is not part of the token")
        XCTAssertEqual(fromFiles.operatorToken?.authorizationValue, "Bearer operator-token-from-file-0002")
        XCTAssertEqual(fromFiles.warnings, [])

        let fromEnvironment = try config.loadTokens(environment: ["VIGIL_CLUSTER_TOKEN": "cluster-token-from-env-00003"])
        XCTAssertEqual(fromEnvironment.clusterToken?.authorizationValue, "Bearer cluster-token-from-env-00003", "the environment overrides the file")
        XCTAssertEqual(fromEnvironment.operatorToken?.authorizationValue, "Bearer operator-token-from-file-0002")

        let none = try SecurityConfig().loadTokens(environment: ["VIGIL_OPERATOR_TOKEN": "operator-token-from-env-0004"])
        XCTAssertNil(none.clusterToken)
        XCTAssertNotNil(none.operatorToken, "the environment alone is enough")
    }

    func testAReadableTokenFileIsAWarningNotAnError() throws {
        let file = try write("cluster-token-world-readable", "open.token", mode: 0o644)
        let tokens = try SecurityConfig(clusterTokenFile: file).loadTokens(environment: [:])
        XCTAssertNotNil(tokens.clusterToken)
        XCTAssertEqual(tokens.warnings.count, 1)
        XCTAssertTrue(tokens.warnings[0].contains("chmod 600 \(file)"), tokens.warnings[0])
        XCTAssertFalse(tokens.warnings[0].contains("cluster-token-world-readable"))
    }

    func testTokenErrorsNameTheFileNeverTheContent() throws {
        let missing = directory.appendingPathComponent("absent.token").path
        let text = message { _ = try SecurityConfig(clusterTokenFile: missing).loadTokens(environment: [:]) }
        XCTAssertTrue(text.hasPrefix("security.cluster_token_file: cannot read the token file \(missing): "), text)

        let short = try write("tiny-secret", "short.token")
        let shortText = message { _ = try SecurityConfig(operatorTokenFile: short).loadTokens(environment: [:]) }
        XCTAssertTrue(shortText.hasPrefix("security.operator_token_file (\(short)): the token is 11 characters long"), shortText)
        XCTAssertFalse(shortText.contains("tiny-secret"))

        let same = try write("the-same-token-for-both-1234", "same.token")
        let sameText = message { _ = try SecurityConfig(clusterTokenFile: same, operatorTokenFile: same).loadTokens(environment: [:]) }
        XCTAssertTrue(sameText.contains("the operator token is the same as the cluster token"), sameText)
    }

    func testProtectReadsNeedsAToken() throws {
        XCTAssertTrue(message { _ = try SecurityConfig(protectReads: true).accessPolicy(tokens: SecurityTokens()) }
            .hasPrefix("security.protect_reads: is true but no token is configured"))
        let policy = try SecurityConfig(protectReads: true).accessPolicy(tokens: SecurityTokens(operatorToken: try SecretToken("operator-token-abcdef-0123", source: "t")))
        XCTAssertTrue(policy.protectReads)
    }

    func testTLSFilesLoadAndBadOnesAreNamed() throws {
        let server = SecurityConfig(tlsCertificate: TLSFixtures.serverCertificate, tlsKey: TLSFixtures.serverKey, tlsCA: TLSFixtures.ca, requireClientCertificate: true)
        let serverTLS = try XCTUnwrap(try server.makeServerTLS())
        XCTAssertTrue(serverTLS.requiresClientCertificate)
        XCTAssertTrue(serverTLS.verifiesClientCertificates)
        XCTAssertNil(try SecurityConfig(tlsCA: TLSFixtures.ca).makeServerTLS(), "a CA alone serves no TLS")

        let client = try XCTUnwrap(try SecurityConfig(tlsCertificate: TLSFixtures.clientCertificate, tlsKey: TLSFixtures.clientKey, tlsCA: TLSFixtures.ca).makeClientTLS())
        XCTAssertTrue(client.presentsCertificate)
        XCTAssertNil(try SecurityConfig().makeClientTLS())

        let missing = directory.appendingPathComponent("nope.pem").path
        XCTAssertTrue(message { _ = try SecurityConfig(tlsCertificate: missing, tlsKey: TLSFixtures.serverKey).makeServerTLS() }
            .hasPrefix("security.tls_certificate: cannot read \(missing): "))
        let garbage = try write("this is not a certificate", "garbage.pem")
        XCTAssertTrue(message { _ = try SecurityConfig(tlsCA: garbage).makeClientTLS() }.hasPrefix("security.tls_ca: \(garbage) "))
        XCTAssertTrue(message { _ = try SecurityConfig(tlsCertificate: TLSFixtures.serverCertificate, tlsKey: garbage).makeServerTLS() }
            .hasPrefix("security.tls_key: \(garbage) is not an unencrypted PEM private key"))
        let mismatch = message { _ = try SecurityConfig(tlsCertificate: TLSFixtures.serverCertificate, tlsKey: TLSFixtures.clientKey).makeServerTLS() }
        XCTAssertTrue(mismatch.hasPrefix("security.tls_key: cannot use the key") && mismatch.contains("belongs to the certificate"), mismatch)
    }
}
