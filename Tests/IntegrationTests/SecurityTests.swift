import Foundation
import Logging
import Protocol
import XCTest

/// A cluster with `[security]` on, for real: mutual TLS, the cluster token on every RPC, the
/// operator token on `ack` and on reads (`protect_reads`), and processes of the `vigil`
/// executable on loopback. Then every log, status and metrics output is searched for the tokens.
final class SecurityTests: ClusterTestCase {
    static let fixtures = ProcessHarness.repoRoot.appendingPathComponent("Tests/Fixtures/tls")
    private var secureClient: RPCClient?
    private var clusterToken = ""
    private var operatorToken = ""
    private let wrongToken = "wrong-token-" + SecurityTests.randomHex(16)

    static func randomHex(_ bytes: Int) -> String {
        (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    override func tearDown() {
        if let client = secureClient {
            let done = DispatchSemaphore(value: 0)
            Task {
                await client.close()
                done.signal()
            }
            done.wait()
        }
        super.tearDown()
    }

    /// The test's own client: TLS with the test client certificate, and the operator token.
    override func rpc() throws -> RPCClient {
        if let secureClient { return secureClient }
        var logger = Logger(label: "it")
        logger.logLevel = .error
        let tls = try ClientTLS(ca: Self.fixture("ca.pem"), certificate: Self.fixture("client.pem"), key: Self.fixture("client-key.pem"))
        let client = try RPCClient(address: coordinatorAddress, logger: logger, tls: tls, token: try SecretToken(operatorToken, source: "test"))
        secureClient = client
        return client
    }

    private func writeSecret(_ text: String, _ name: String) throws -> String {
        let path = harness.directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        return path
    }

    /// Runs a `vigil` command to completion; returns its exit status and output.
    private func vigil(_ name: String, _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(30)) throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try harness.start(name, arguments, environment: environment)
        guard let status = child.wait(timeout: timeout) else {
            child.signal(SIGKILL)
            throw HarnessError("\(name) did not finish within \(timeout): \(arguments)\n\(child.stderr)")
        }
        return (status, child.stdout, child.stderr)
    }

    func testOnlyTokenHoldersWithCertificatesGetIn() async throws {
        clusterToken = Self.randomHex(32)
        operatorToken = Self.randomHex(32)
        let clusterFile = try writeSecret(clusterToken + "\n", "cluster.token")
        let operatorFile = try writeSecret(operatorToken + "\n", "operator.token")
        try startBrokerAndCoordinator(partitions: 4, extraConfig: """
            [security]
            tls_certificate = "\(Self.fixture("server.pem"))"
            tls_key = "\(Self.fixture("server-key.pem"))"
            tls_ca = "\(Self.fixture("ca.pem"))"
            require_client_certificate = true
            cluster_token_file = "\(clusterFile)"
            operator_token_file = "\(operatorFile)"
            protect_reads = true
            """)
        let clientCertificate = ["--tls-certificate", Self.fixture("client.pem"), "--tls-key", Self.fixture("client-key.pem")]

        // A worker with the certificate and the cluster token (from ./cluster.conf) gets every partition.
        workers.append(try harness.start("worker-good", ["worker", "--coordinator", coordinatorAddress, "--id", "good"] + clientCertificate))
        let admitted = try await awaitStatus("the good worker to own every partition", timeout: .seconds(30)) { s in
            s.workers.contains { $0.id == "good" && $0.state == "up" } && s.partitions.allSatisfy { $0.owner == "good" }
        }
        XCTAssertEqual(admitted.workers.map(\.id), ["good"])

        // A wrong token: refused with 403, logged, and the worker exits with an error.
        let wrong = try vigil("worker-wrong-token", ["worker", "--coordinator", coordinatorAddress, "--id", "wrong", "--metrics-listen", "off"] + clientCertificate,
                              environment: ["VIGIL_CLUSTER_TOKEN": wrongToken])
        XCTAssertNotEqual(wrong.status, 0, "a refused worker exits with an error")
        XCTAssertTrue(wrong.stderr.contains("refused this worker") && wrong.stderr.contains("HTTP 403"), wrong.stderr)

        // No token at all (a config with TLS but without token files): 401.
        let noTokenConfig = harness.directory.appendingPathComponent("no-token.conf").path
        try """
            [kafka]
            brokers = "\(bootstrap)"
            [security]
            tls_ca = "\(Self.fixture("ca.pem"))"
            tls_certificate = "\(Self.fixture("client.pem"))"
            tls_key = "\(Self.fixture("client-key.pem"))"
            """.write(toFile: noTokenConfig, atomically: true, encoding: .utf8)
        let anonymous = try vigil("worker-no-token", ["worker", "--coordinator", coordinatorAddress, "--id", "anonymous", "--config", noTokenConfig, "--metrics-listen", "off"])
        XCTAssertNotEqual(anonymous.status, 0)
        XCTAssertTrue(anonymous.stderr.contains("HTTP 401") && anonymous.stderr.contains("cluster token"), anonymous.stderr)

        // The right token but a certificate from another CA: the TLS handshake fails; it keeps
        // retrying (the coordinator may be restarting) and never registers.
        let rogue = try harness.start("worker-rogue-cert", ["worker", "--coordinator", coordinatorAddress, "--id", "rogue", "--metrics-listen", "off",
                                                           "--tls-certificate", Self.fixture("rogue-client.pem"), "--tls-key", Self.fixture("rogue-client-key.pem")])
        try harness.poll("the rogue worker to report its failed handshake", timeout: .seconds(20)) {
            rogue.stderr.contains("cannot register") && rogue.stderr.contains("TLS handshake failed")
        }
        rogue.signal(SIGTERM)
        _ = rogue.wait(timeout: .seconds(10))

        // Cleartext to the TLS port: refused, with the reason on both sides.
        let plainConfig = harness.directory.appendingPathComponent("plain.conf").path
        try "[kafka]\nbrokers = \"\(bootstrap)\"\n".write(toFile: plainConfig, atomically: true, encoding: .utf8)
        let plain = try vigil("status-plaintext", ["status", "--coordinator", coordinatorAddress, "--config", plainConfig])
        XCTAssertEqual(plain.status, 1)
        XCTAssertTrue(plain.stderr.contains("set [security] tls_ca"), plain.stderr)

        // The CLI: reads need a token (protect_reads), ack needs the operator token.
        let unauthorizedStatus = try vigil("status-no-token", ["status", "--coordinator", coordinatorAddress, "--config", noTokenConfig])
        XCTAssertEqual(unauthorizedStatus.status, 1)
        XCTAssertTrue(unauthorizedStatus.stderr.contains("HTTP 401"), unauthorizedStatus.stderr)
        let status = try vigil("status", ["status", "--coordinator", coordinatorAddress, "--json"] + clientCertificate)
        XCTAssertEqual(status.status, 0, status.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        let workerIDs = (json["workers"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        let owners = (json["partitions"] as? [[String: Any]] ?? []).map { $0["owner"] as? String }
        XCTAssertEqual(workerIDs, ["good"], "no refused worker ever registered")
        XCTAssertEqual(owners, Array(repeating: "good", count: 4), "no refused worker ever got a partition")

        let ackAsWorker = try vigil("ack-cluster-token", ["ack", "--coordinator", coordinatorAddress, "--token-file", clusterFile, "0123456789abcdef"] + clientCertificate)
        XCTAssertEqual(ackAsWorker.status, 1)
        XCTAssertTrue(ackAsWorker.stderr.contains("not the operator token"), ackAsWorker.stderr)
        let ack = try vigil("ack", ["ack", "--coordinator", coordinatorAddress, "0123456789abcdef"] + clientCertificate)
        XCTAssertEqual(ack.status, 1, "an unknown id, but past the token check")
        XCTAssertTrue(ack.stderr.contains("no anomaly with id 0123456789abcdef"), ack.stderr)

        // Every refusal is counted in /metrics (read with the operator token).
        let metrics = String(decoding: try await rpc().request(method: "GET", path: RPCPath.metrics).body, as: UTF8.self)
        for reason in ["wrong_token", "missing_token", "tls_handshake", "plaintext_on_tls"] {
            let value = Self.sample(metrics, #"vigil_http_rejected_total{reason="\#(reason)"}"#)
            XCTAssertGreaterThanOrEqual(value ?? 0, 1, "\(reason) counted: \(metrics.split(separator: "\n").filter { $0.contains("rejected") })")
        }
        let coordinatorLog = coordinator.stderr
        XCTAssertTrue(coordinatorLog.contains("refused a request"), coordinatorLog)
        XCTAssertTrue(coordinatorLog.contains("TLS handshake failed"), coordinatorLog)

        // No token appears anywhere: logs of every process, the status, the metrics.
        harness.shutdown()
        let everything = harness.children.map { $0.stdout + $0.stderr }.joined() + status.stdout + metrics
            + (try String(contentsOfFile: configPath, encoding: .utf8))
        for (name, secret) in [("cluster token", clusterToken), ("operator token", operatorToken), ("wrong token", wrongToken)] {
            XCTAssertFalse(everything.contains(secret), "the \(name) appears in a log or an output")
        }
    }

    static func sample(_ text: String, _ series: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// Every cluster.conf that once made the TOML parser abort (found by `make fuzz`, kept in
    /// Fuzz/corpus/FuzzConfig/crash-*) is now one clean error line and a non-zero exit status.
    func testConfigsThatOnceCrashedTheLoaderAreCleanErrors() throws {
        let directory = ProcessHarness.repoRoot.appendingPathComponent("Fuzz/corpus/FuzzConfig")
        let crashes = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("crash-") }.sorted()
        XCTAssertFalse(crashes.isEmpty)
        for name in crashes {
            let child = try harness.start("config-\(name)", ["status", "--coordinator", "127.0.0.1:1", "--config", directory.appendingPathComponent(name).path])
            XCTAssertNotNil(child.wait(timeout: .seconds(30)))
            XCTAssertEqual(child.process.terminationReason, .exit, "\(name) must not crash vigil: \(child.stderr.prefix(300))")
            XCTAssertNotEqual(child.process.terminationStatus, 0, name)
            XCTAssertTrue(child.stderr.hasPrefix("Error: ") && (child.stderr.contains("(syntax)") || child.stderr.contains("not UTF-8")),
                          "\(name): \(child.stderr.prefix(300))")
        }
    }
}
