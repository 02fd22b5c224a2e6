import Coordinator
import Detection
import Foundation
import Protocol
import XCTest

/// The dashboard page and the API routes it reads (`/v1/symbols`, `/v1/symbols/{symbol}/windows`).
/// Rendering in a real browser is tested against a real cluster in `OperatorDashboardTests`.
final class DashboardTests: CoordinatorTestCase {
    let start: Int64 = 1_723_161_600_000

    func testThePageIsSelfContainedAndReadsOnlyRoutesTheCoordinatorServes() async throws {
        let node = try makeNode(store: try openStore(), clock: ManualClock(start))
        let response = await node.handle(HTTPRequest(method: "GET", path: "/"))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("content-type"), "text/html; charset=utf-8")
        let html = response.text
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.contains("<script>") && html.contains("<style>"), "inline script and style")
        XCTAssertFalse(html.contains("<script src") || html.contains("<link "), "no external resources: the page must work offline")
        XCTAssertFalse(html.contains("__REFRESH_SECONDS__"))
        XCTAssertTrue(html.contains("const REFRESH_MS = \(DashboardPage.refreshSeconds) * 1000"))

        // Every path the script fetches is served (with sample parameters).
        for path in ["/v1/status", "/v1/anomalies", "/v1/symbols", "/v1/symbols/BTCUSDT/windows"] {
            XCTAssertTrue(html.contains(path.replacingOccurrences(of: "/BTCUSDT/windows", with: "/${symbol}/windows")), "the page reads \(path)")
            let answer = await node.handle(HTTPRequest(method: "GET", path: path, query: ["limit": "50"]))
            XCTAssertEqual(answer.status, 200, "GET \(path): \(answer.text)")
        }
        let post = await node.handle(HTTPRequest(method: "POST", path: "/"))
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.header("allow"), "GET")
    }

    func testSymbolsAndTheirNewestWindowsOldestFirstWithoutNaN() async throws {
        let clock = ManualClock(start)
        let node = try makeNode(store: try openStore(), clock: clock, partitions: 1)
        _ = try await node.registerWorker("w1")
        _ = try await node.beat("w1")
        var windows = (0..<10).map { window("BTCUSDT", startMs: start + Int64($0) * 20_000) }
        // An empty window: no trade, no price yet (NaN in the detector's summary).
        windows[9].count = 0
        windows[9].close = .nan
        windows[9].vwap = .nan
        windows.append(window("ETHUSDT", startMs: start))
        // Straight to the node: plain JSON cannot carry the NaN the worker's encoder sends as a string.
        let stored = try await node.report(ReportRequest(
            workerID: "w1", partition: 0, epoch: 1, anomalies: [anomaly("BTCUSDT", .priceShock, .high, windowStartMs: start + 20_000)], windows: windows))
        XCTAssertTrue(stored.accepted)

        let symbols: [SymbolSummary] = try await node.get(RPCPath.symbols)
        XCTAssertEqual(symbols.map(\.symbol), ["BTCUSDT", "ETHUSDT"])
        XCTAssertEqual(symbols[0].windows, 10)
        XCTAssertEqual(symbols[0].lastWindowEndMs, start + 9 * 20_000 + 60_000)
        XCTAssertNil(symbols[0].lastClose, "the newest window had no price")
        XCTAssertEqual(symbols[0].anomalies, 1)
        XCTAssertEqual(symbols[1].lastClose, 60_990)

        let recent = await node.handle(HTTPRequest(method: "GET", path: "/v1/symbols/BTCUSDT/windows", query: ["limit": "3"]))
        XCTAssertEqual(recent.status, 200)
        XCTAssertFalse(recent.text.contains("NaN"), "a missing price is left out, never sent as NaN: \(recent.text)")
        let points = try recent.decode([WindowPoint].self)
        XCTAssertEqual(points.map(\.startMs), [start + 140_000, start + 160_000, start + 180_000], "the newest three, oldest first")
        XCTAssertNil(points[2].close)
        XCTAssertEqual(points[0].close, 60_990)

        let since: [WindowPoint] = try await node.get("/v1/symbols/BTCUSDT/windows", query: ["since": "\(start + 160_000)"])
        XCTAssertEqual(since.map(\.startMs), [start + 160_000, start + 180_000])
        let unknown: [WindowPoint] = try await node.get("/v1/symbols/NOPE/windows")
        XCTAssertEqual(unknown, [])

        let bad = await node.handle(HTTPRequest(method: "GET", path: "/v1/symbols/BTCUSDT/windows", query: ["limit": "0"]))
        XCTAssertEqual(bad.status, 400)
        XCTAssertTrue(bad.text.contains("limit must be a positive integer"), bad.text)
    }
}
