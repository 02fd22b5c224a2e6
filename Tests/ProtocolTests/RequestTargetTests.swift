import XCTest
@testable import Protocol

final class RequestTargetTests: XCTestCase {
    func testSplitDecodesPathAndQuery() {
        let (path, query) = RequestTarget.split("/v1/anomalies?symbol=BTC%2FUSDT&since=10&note=a+b%20c&flag&symbol=ETHUSDT#frag")
        XCTAssertEqual(path, "/v1/anomalies")
        XCTAssertEqual(query, ["symbol": "ETHUSDT", "since": "10", "note": "a b c", "flag": ""], "the last value wins; a bare key is empty")
    }

    func testEmptyPathIsRootAndPlusStaysInPath() {
        XCTAssertEqual(RequestTarget.split("").path, "/")
        XCTAssertEqual(RequestTarget.split("?a=1").path, "/")
        XCTAssertEqual(RequestTarget.split("/a+b/%C3%A9").path, "/a+b/é")
    }

    func testInvalidEscapesAreKeptLiterally() {
        XCTAssertEqual(RequestTarget.percentDecode("100%zz%4", plusIsSpace: false), "100%zz%4")
    }

    func testBuildEncodesAndSortsSoSplitRoundTrips() {
        let query = ["symbol": "BTC/USDT", "note": "a b&c=d", "ü": "ß"]
        let target = RequestTarget.build(path: "/v1/anomalies", query: query)
        XCTAssertEqual(target, "/v1/anomalies?note=a%20b%26c%3Dd&symbol=BTC%2FUSDT&%C3%BC=%C3%9F")
        XCTAssertEqual(RequestTarget.split(target).query, query)
        XCTAssertEqual(RequestTarget.build(path: "/x", query: [:]), "/x")
    }
}

final class HostAndPortTests: XCTestCase {
    func testParsesHostPortAndBracketedIPv6() throws {
        XCTAssertEqual(try HostAndPort(parsing: "127.0.0.1:7400"), HostAndPort(host: "127.0.0.1", port: 7400))
        XCTAssertEqual(try HostAndPort(parsing: " coord.local:80 "), HostAndPort(host: "coord.local", port: 80))
        let v6 = try HostAndPort(parsing: "[::1]:7400")
        XCTAssertEqual(v6, HostAndPort(host: "::1", port: 7400))
        XCTAssertEqual(v6.description, "[::1]:7400")
    }

    func testRejectsBadAddressesWithAMessageSayingWhatIsExpected() {
        for (address, problem) in [
            ("localhost", "missing ':PORT'"),
            (":7400", "the host is empty"),
            ("host:0", "from 1 to 65535"),
            ("host:http", "from 1 to 65535"),
            ("::1:7400", "brackets"),
            ("[::1]7400", "missing ':PORT'"),
        ] {
            XCTAssertThrowsError(try HostAndPort(parsing: address), address) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(problem), "\(address): \(text)")
                XCTAssertTrue(text.contains("expected HOST:PORT"), text)
            }
        }
        XCTAssertThrowsError(try RPCClient(address: "nonsense", logger: .init(label: "test")))
    }
}
