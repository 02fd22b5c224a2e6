import Foundation
import XCTest
@testable import Protocol

/// The access rules (`AccessPolicy`) and the token type, as pure values: no sockets.
final class SecurityPolicyTests: XCTestCase {
    static let clusterSecret = "cluster-0123456789abcdef-SECRET"
    static let operatorSecret = "operator-fedcba9876543210-SECRET"
    let cluster = try! SecretToken(clusterSecret, source: "test")
    let operatorToken = try! SecretToken(operatorSecret, source: "test")

    private func request(_ method: String, _ path: String, token: String? = nil) -> HTTPRequest {
        HTTPRequest(method: method, path: path, headers: token.map { [("authorization", "Bearer \($0)")] } ?? [])
    }

    func testEndpointClasses() {
        XCTAssertEqual(AccessPolicy.access(method: "POST", path: RPCPath.register), .cluster)
        XCTAssertEqual(AccessPolicy.access(method: "GET", path: "/rpc/anything"), .cluster, "every /rpc/ path is for workers, whatever the method")
        XCTAssertEqual(AccessPolicy.access(method: "POST", path: "/v1/anomalies/abc/ack"), .operator)
        XCTAssertEqual(AccessPolicy.access(method: "DELETE", path: "/v1/anomalies/abc"), .operator, "any mutating method outside /rpc/ is an operator call")
        XCTAssertEqual(AccessPolicy.access(method: "GET", path: RPCPath.status), .read)
        XCTAssertEqual(AccessPolicy.access(method: "HEAD", path: "/metrics"), .read)
        XCTAssertEqual(AccessPolicy.access(method: "GET", path: "/rpcx"), .read, "only the /rpc/ tree is the cluster's")
    }

    func testNoTokensConfiguredLeavesEverythingOpen() {
        let policy = AccessPolicy()
        XCTAssertTrue(policy.isOpen)
        for (method, path) in [("POST", RPCPath.register), ("POST", "/v1/anomalies/x/ack"), ("GET", RPCPath.status)] {
            XCTAssertEqual(policy.decide(request(method, path)), .allow(role: nil), "\(method) \(path)")
        }
    }

    func testClusterEndpointsNeedTheClusterTokenAndOnlyIt() throws {
        let policy = AccessPolicy(clusterToken: cluster, operatorToken: operatorToken)
        XCTAssertEqual(policy.decide(request("POST", RPCPath.heartbeat, token: Self.clusterSecret)), .allow(role: .cluster))

        guard case .deny(let missing) = policy.decide(request("POST", RPCPath.register)) else { return XCTFail("no token must be refused") }
        XCTAssertEqual(missing.status, 401)
        XCTAssertEqual(missing.reason, .missingToken)
        XCTAssertTrue(missing.message.contains("cluster token") && missing.message.contains("VIGIL_CLUSTER_TOKEN"), missing.message)
        XCTAssertEqual(missing.response.header("www-authenticate"), "Bearer realm=\"vigil\"")

        guard case .deny(let wrong) = policy.decide(request("POST", RPCPath.register, token: "not-the-token-at-all-123")) else { return XCTFail("a wrong token must be refused") }
        XCTAssertEqual(wrong.status, 403)
        XCTAssertEqual(wrong.reason, .wrongToken)
        XCTAssertNil(wrong.response.header("www-authenticate"))

        guard case .deny(let operatorOnRPC) = policy.decide(request("POST", RPCPath.register, token: Self.operatorSecret)) else {
            return XCTFail("the operator token must not register workers")
        }
        XCTAssertEqual(operatorOnRPC.status, 403)
    }

    func testMutatingEndpointsNeedTheOperatorToken() {
        let policy = AccessPolicy(clusterToken: cluster, operatorToken: operatorToken)
        XCTAssertEqual(policy.decide(request("POST", "/v1/anomalies/x/ack", token: Self.operatorSecret)), .allow(role: .operator))
        guard case .deny(let missing) = policy.decide(request("POST", "/v1/anomalies/x/ack")) else { return XCTFail() }
        XCTAssertEqual(missing.status, 401)
        guard case .deny(let worker) = policy.decide(request("POST", "/v1/anomalies/x/ack", token: Self.clusterSecret)) else {
            return XCTFail("a worker's token must not acknowledge anomalies")
        }
        XCTAssertEqual(worker.status, 403)
        XCTAssertTrue(worker.message.contains("operator token"), worker.message)
    }

    func testWithOnlyAClusterTokenMutatingEndpointsAreClosed() {
        let policy = AccessPolicy(clusterToken: cluster)
        guard case .deny(let denial) = policy.decide(request("POST", "/v1/anomalies/x/ack", token: Self.clusterSecret)) else {
            return XCTFail("security is on: without an operator token nobody may ack")
        }
        XCTAssertEqual(denial.reason, .notConfigured)
        XCTAssertEqual(denial.status, 403)
        XCTAssertTrue(denial.message.contains("operator_token_file"), denial.message)
        XCTAssertEqual(policy.decide(request("GET", RPCPath.status)), .allow(role: nil), "reads stay open without protect_reads")
    }

    func testProtectedReadsTakeEitherToken() {
        let policy = AccessPolicy(clusterToken: cluster, operatorToken: operatorToken, protectReads: true)
        XCTAssertEqual(policy.decide(request("GET", RPCPath.status, token: Self.operatorSecret)), .allow(role: .operator))
        XCTAssertEqual(policy.decide(request("GET", RPCPath.status, token: Self.clusterSecret)), .allow(role: .cluster))
        guard case .deny(let missing) = policy.decide(request("GET", "/metrics")) else { return XCTFail() }
        XCTAssertEqual(missing.status, 401)
        guard case .deny(let wrong) = policy.decide(request("GET", RPCPath.anomalies, token: "nope-nope-nope-nope-1")) else { return XCTFail() }
        XCTAssertEqual(wrong.status, 403)
    }

    func testBearerHeaderParsing() {
        func token(_ value: String) -> String? {
            AccessPolicy.bearerToken(in: HTTPRequest(method: "GET", path: "/", headers: [("authorization", value)])).map { String(Substring($0)) }
        }
        XCTAssertEqual(token("Bearer abc"), "abc")
        XCTAssertEqual(token("bearer   abc  "), "abc", "scheme in any case, extra spaces ignored")
        XCTAssertNil(token("Basic dXNlcjpwYXNz"), "another scheme is no bearer token")
        XCTAssertNil(token("Bearer "))
        XCTAssertNil(token("Bearer"))
    }

    func testDenialsNeverEchoTheTokenSent() {
        let policy = AccessPolicy(clusterToken: cluster, operatorToken: operatorToken, protectReads: true)
        let sent = "attacker-supplied-token-XYZ-123456"
        for (method, path) in [("POST", RPCPath.register), ("POST", "/v1/anomalies/x/ack"), ("GET", RPCPath.status)] {
            guard case .deny(let denial) = policy.decide(request(method, path, token: sent)) else { return XCTFail() }
            XCTAssertFalse(denial.message.contains(sent))
            XCTAssertFalse(denial.message.contains(Self.clusterSecret) || denial.message.contains(Self.operatorSecret))
        }
    }

    // MARK: - SecretToken

    func testATokenNeverPrintsItself() {
        let text = [
            "\(cluster)", String(describing: cluster), String(reflecting: cluster),
            "\(AccessPolicy(clusterToken: cluster, operatorToken: operatorToken))",
            "\(SecurityTokens(clusterToken: cluster, operatorToken: operatorToken))",
        ]
        var dumped = ""
        dump(cluster, to: &dumped)
        for line in text + [dumped] {
            XCTAssertFalse(line.contains(Self.clusterSecret) || line.contains(Self.operatorSecret), "leaked in: \(line)")
        }
        XCTAssertEqual(cluster.authorizationValue, "Bearer \(Self.clusterSecret)")
    }

    func testTokenValidation() {
        XCTAssertThrowsError(try SecretToken("short", source: "VIGIL_CLUSTER_TOKEN")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("VIGIL_CLUSTER_TOKEN: ") && text.contains("at least 16"), text)
            XCTAssertFalse(text.contains("short"), "the message must not contain the token")
        }
        XCTAssertThrowsError(try SecretToken("has a space in the middle!", source: "f")) { error in
            XCTAssertTrue("\(error)".contains("position 4"), "\(error)")
        }
        XCTAssertThrowsError(try SecretToken("newline-inside\nthe-token-x", source: "f"), "a token must be header-safe")
        XCTAssertNoThrow(try SecretToken("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", source: "hex"))
        XCTAssertNoThrow(try SecretToken("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", source: "base64"))
    }

    func testTokenComparison() throws {
        XCTAssertTrue(cluster.matches(Array(Self.clusterSecret.utf8)))
        XCTAssertFalse(cluster.matches(Array((Self.clusterSecret + "x").utf8)))
        XCTAssertFalse(cluster.matches(Array(Self.clusterSecret.dropLast().utf8) + [UInt8(ascii: "X")]))
        XCTAssertEqual(cluster, try SecretToken(Self.clusterSecret, source: "again"))
        XCTAssertNotEqual(cluster, operatorToken)
    }

    // MARK: - Fuzz corpus

    /// Fuzz/corpus/FuzzRPCMessages (seeds, and any input that once crashed the fuzz target),
    /// decoded as every message type: errors, never a trap.
    func testTheRPCMessageFuzzCorpusDecodesOrFailsCleanly() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus/FuzzRPCMessages")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        XCTAssertGreaterThan(names.count, 5)
        var decoded = 0
        for name in names {
            let body = Array(try Data(contentsOf: directory.appendingPathComponent(name)).dropFirst())
            let request = HTTPRequest(method: "POST", path: RPCPath.report, body: body)
            let response = HTTPResponse(status: 200, body: body)
            let attempts: [Bool] = [
                (try? request.decode(RegisterRequest.self)) != nil, (try? request.decode(HeartbeatRequest.self)) != nil,
                (try? request.decode(ReportRequest.self)) != nil, (try? request.decode(CheckpointRequest.self)) != nil,
                (try? request.decode(FetchCheckpointRequest.self)) != nil, (try? request.decode(ReleaseRequest.self)) != nil,
                (try? request.decode(DeregisterRequest.self)) != nil, (try? response.decode(RegisterResponse.self)) != nil,
                (try? response.decode(HeartbeatResponse.self)) != nil, (try? response.decode(FetchCheckpointResponse.self)) != nil,
                (try? response.decode(ClusterStatus.self)) != nil, (try? response.decode([StoredAnomaly].self)) != nil,
            ]
            if attempts.contains(true) { decoded += 1 }
            _ = policyForFuzz.decide(HTTPRequest(method: "POST", path: RequestTarget.split(String(decoding: body, as: UTF8.self)).path,
                                                 headers: [("authorization", String(decoding: body, as: UTF8.self))]))
        }
        XCTAssertGreaterThanOrEqual(decoded, 12, "every seed is a valid message of its type")
    }

    private var policyForFuzz: AccessPolicy { AccessPolicy(clusterToken: cluster, operatorToken: operatorToken, protectReads: true) }
}
