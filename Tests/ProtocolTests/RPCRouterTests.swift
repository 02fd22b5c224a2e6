import XCTest
@testable import Protocol

final class RPCRouterTests: XCTestCase {
    private func router() -> RPCRouter {
        var router = RPCRouter()
        router.post("/v1/anomalies/{id}/ack") { _, parameters in
            .text("acked \(parameters["id"] ?? "?")")
        }
        router.get("/v1/anomalies") { request, _ in
            .text("list \(request.query["symbol"] ?? "all")")
        }
        router.post(RPCPath.release, json: { (request: ReleaseRequest) -> ReleaseResponse in
            ReleaseResponse(accepted: request.epoch > 0)
        })
        router.get("/fails/{how}") { _, parameters in
            switch parameters["how"] {
            case "bad": throw RPCError.badRequest("symbol is missing")
            case "gone": throw RPCError.status(410, "that anomaly was deleted")
            default: throw CocoaError(.fileNoSuchFile)
            }
        }
        return router
    }

    func testRoutesByMethodAndPathWithParameters() async throws {
        let router = router()
        let ack = await router.handle(HTTPRequest(method: "POST", path: "/v1/anomalies/abc123/ack/"))
        XCTAssertEqual(String(decoding: ack.body, as: UTF8.self), "acked abc123")
        let list = await router.handle(HTTPRequest(method: "GET", path: "/v1/anomalies", query: ["symbol": "BTCUSDT"]))
        XCTAssertEqual(String(decoding: list.body, as: UTF8.self), "list BTCUSDT")
        let head = await router.handle(HTTPRequest(method: "HEAD", path: "/v1/anomalies"))
        XCTAssertEqual(head.status, 200, "HEAD uses the GET route")
    }

    func testNoRouteIs404AndWrongMethodIs405WithAllow() async {
        let router = router()
        let missing = await router.handle(HTTPRequest(method: "GET", path: "/v1/anomalies/abc123"))
        XCTAssertEqual(missing.status, 404)
        let wrong = await router.handle(HTTPRequest(method: "DELETE", path: "/v1/anomalies/x/ack"))
        XCTAssertEqual(wrong.status, 405)
        XCTAssertEqual(wrong.header("allow"), "POST")
    }

    func testJSONRouteDecodesAndAnswersAndRejectsBadBodiesWith400() async throws {
        let router = router()
        let body = try JSONEncoder().encode(ReleaseRequest(workerID: "w1", partition: 3, epoch: 7))
        let ok = await router.handle(HTTPRequest(method: "POST", path: RPCPath.release, body: Array(body)))
        XCTAssertEqual(ok.status, 200)
        XCTAssertEqual(try ok.decode(ReleaseResponse.self).accepted, true)

        let bad = await router.handle(HTTPRequest(method: "POST", path: RPCPath.release, body: Array("{\"workerID\":1}".utf8)))
        XCTAssertEqual(bad.status, 400)
        XCTAssertTrue(String(decoding: bad.body, as: UTF8.self).contains("ReleaseRequest"))
    }

    func testThrownErrorsBecomeStatuses() async {
        let router = router()
        let bad = await router.handle(HTTPRequest(method: "GET", path: "/fails/bad"))
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual(String(decoding: bad.body, as: UTF8.self), "symbol is missing\n")
        let gone = await router.handle(HTTPRequest(method: "GET", path: "/fails/gone"))
        XCTAssertEqual(gone.status, 410)
        let other = await router.handle(HTTPRequest(method: "GET", path: "/fails/other"))
        XCTAssertEqual(other.status, 500)
        XCTAssertTrue(String(decoding: other.body, as: UTF8.self).hasPrefix("GET /fails/other failed: "))
    }
}
