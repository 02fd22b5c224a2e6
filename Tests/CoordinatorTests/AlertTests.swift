import Coordinator
import Detection
import Foundation
import Logging
import Protocol
import Synchronization
import XCTest

/// Alerts: queued with the anomaly's first insert, delivered in Slack's format to a real HTTP
/// server on loopback, retried with backoff, each exactly once, across a restart.
final class AlertTests: CoordinatorTestCase {
    let start: Int64 = 1_723_161_600_000

    /// A webhook on loopback that answers `failures` requests with `failStatus`, then 200 "ok",
    /// and keeps the bodies it accepted.
    final class Webhook: HTTPHandler {
        private let state: Mutex<(failuresLeft: Int, failStatus: Int, accepted: [String], attempts: Int)>

        init(failures: Int, failStatus: Int = 503) {
            state = Mutex((failures, failStatus, [], 0))
        }

        func handle(_ request: HTTPRequest) async -> HTTPResponse {
            state.withLock { state in
                state.attempts += 1
                if state.failuresLeft > 0 {
                    state.failuresLeft -= 1
                    return .text("unavailable", status: state.failStatus)
                }
                guard request.method == "POST", request.header("content-type") == "application/json",
                      (try? JSONSerialization.jsonObject(with: Data(request.body))) is [String: Any] else {
                    return .text("invalid_payload", status: 400)
                }
                state.accepted.append(String(decoding: request.body, as: UTF8.self))
                return .text("ok")
            }
        }

        var attempts: Int { state.withLock { $0.attempts } }
        var accepted: [[String: Any]] {
            state.withLock { $0.accepted }.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        }
        var acceptedIDs: [String] {
            accepted.compactMap { ($0["attachments"] as? [[String: Any]])?.first?["footer"] as? String }.map { String($0.split(separator: " ").last ?? "") }
        }
    }

    /// Starts `webhook` on a loopback port; returns the server (to shut down) and its URL.
    private func serve(_ webhook: Webhook) async throws -> (server: HTTPServer, url: String) {
        let server = HTTPServer(host: "127.0.0.1", port: 0, handler: webhook, logger: logs.logger("webhook"))
        let port = try await server.start()
        return (server, "http://127.0.0.1:\(port)/services/T000/B000/secret")
    }

    private func seeded() throws -> CoordinatorStore {
        let store = try openStore()
        try store.saveAssignments([PartitionAssignment(partition: 0, owner: "w1", epoch: 1, state: .active)], changes: [], now: 0)
        return store
    }

    private func suppressed(_ a: Anomaly) -> Anomaly {
        var copy = a
        copy.suppressed = true
        return copy
    }

    func testOnlyNewAdmittedAnomaliesAreQueuedInTheReportsTransaction() async throws {
        let store = try seeded()
        let policy = AlertPolicy(webhookURL: "http://127.0.0.1:1/hook", minSeverity: .high)
        let critical = anomaly("BTCUSDT", .flashCrash, .critical, windowStartMs: start)
        let high = anomaly("ETHUSDT", .priceShock, .high, windowStartMs: start)
        let medium = anomaly("SOLUSDT", .volumeSpike, .medium, windowStartMs: start)
        let repeated = suppressed(anomaly("BTCUSDT", .flashCrash, .critical, windowStartMs: start + 20_000))
        let report = ReportRequest(workerID: "w1", partition: 0, epoch: 1, anomalies: [critical, high, medium, repeated])
        _ = try await store.storeReport(report, now: 1, alerts: policy)
        _ = try await store.storeReport(report, now: 2, alerts: policy)  // a replay
        // A zombie's report is refused whole: nothing is queued either.
        let zombie = ReportRequest(workerID: "w2", partition: 0, epoch: 1, anomalies: [anomaly("XRPUSDT", .flashCrash, .critical, windowStartMs: start)])
        _ = try await store.storeReport(zombie, now: 3, alerts: policy)

        let queued = try await store.queuedAlerts()
        XCTAssertEqual(queued.map(\.anomaly.id), [critical.id, high.id], "critical and high, once; not medium, not suppressed, not the zombie's")
        XCTAssertEqual(queued.map(\.state), [.pending, .pending])
        XCTAssertEqual(queued.first?.anomaly, critical, "the outbox keeps the whole anomaly")
        XCTAssertEqual(queued.first?.createdAtMs, 1)
    }

    func testEachAlertArrivesOnceInOrderAfterTheWebhookFailedThreeTimes() async throws {
        let webhook = Webhook(failures: 3)
        let (server, url) = try await serve(webhook)
        let clock = ManualClock(start)
        let store = try seeded()
        let policy = AlertPolicy(webhookURL: url, minSeverity: .high, dashboardURL: "http://vigil.example:7070/")
        let anomalies = [
            anomaly("BTCUSDT", .flashCrash, .critical, windowStartMs: start - 60_000),
            anomaly("ETHUSDT", .priceShock, .high, windowStartMs: start - 60_000),
            anomaly("SOLUSDT", .volumeSpike, .high, windowStartMs: start - 40_000),
        ]
        _ = try await store.storeReport(ReportRequest(workerID: "w1", partition: 0, epoch: 1, anomalies: anomalies), now: clock.now, alerts: policy)
        let dispatcher = AlertDispatcher(policy: policy, store: store, clusterName: "test", logger: logs.logger("alerts"), clock: clock.read)

        // Failures back off 1 s, 2 s, 4 s; a pass stops at the first failure.
        var delays: [Int64] = []
        for _ in 0..<3 {
            let pass = try await dispatcher.deliverDue(now: clock.now)
            XCTAssertEqual(pass, AlertDispatcher.Pass(delivered: 0, refused: 0, retried: 1))
            let due = try await store.nextAlertDue()
            let next = try XCTUnwrap(due)
            delays.append(next - clock.now)
            let early = try await dispatcher.deliverDue(now: next - 1)
            XCTAssertEqual(early, AlertDispatcher.Pass(), "nothing is due before the backoff ends")
            clock.advance(by: next - clock.now)
        }
        XCTAssertEqual(delays, [1_000, 2_000, 4_000])
        let pass = try await dispatcher.deliverDue(now: clock.now)
        XCTAssertEqual(pass.delivered, 3)
        let again = try await dispatcher.deliverDue(now: clock.now + 3_600_000)
        XCTAssertEqual(again, AlertDispatcher.Pass(), "nothing is sent twice")

        XCTAssertEqual(webhook.attempts, 6)
        XCTAssertEqual(webhook.acceptedIDs, anomalies.map(\.id), "each anomaly exactly once, in order")
        let first = webhook.accepted[0]
        XCTAssertEqual(first["text"] as? String, "CRITICAL flash crash on BTCUSDT: BTCUSDT flash_crash (<http://vigil.example:7070/#symbol=BTCUSDT|dashboard>)")
        let attachment = try XCTUnwrap((first["attachments"] as? [[String: Any]])?.first)
        XCTAssertEqual(attachment["color"] as? String, "#e5484d")
        XCTAssertEqual(attachment["title_link"] as? String, "http://vigil.example:7070/#symbol=BTCUSDT")
        let fields = try XCTUnwrap(attachment["fields"] as? [[String: Any]])
        XCTAssertEqual(fields.first { $0["title"] as? String == "Current" }?["value"] as? String, "-0.031")
        XCTAssertEqual(fields.first { $0["title"] as? String == "Expected" }?["value"] as? String, "0.0004")
        let queued = try await store.queuedAlerts()
        XCTAssertEqual(queued.map(\.state), [.delivered, .delivered, .delivered])
        XCTAssertEqual(queued.map(\.attempts), [4, 1, 1])
        await server.shutdown()
    }

    func testPendingAlertsSurviveACoordinatorRestart() async throws {
        let webhook = Webhook(failures: 1)
        let (server, url) = try await serve(webhook)
        let clock = ManualClock(start)
        var store = try seeded()
        let policy = AlertPolicy(webhookURL: url, minSeverity: .medium)
        let queued = [anomaly("BTCUSDT", .priceShock, .medium, windowStartMs: start), anomaly("ETHUSDT", .priceShock, .high, windowStartMs: start)]
        _ = try await store.storeReport(ReportRequest(workerID: "w1", partition: 0, epoch: 1, anomalies: queued), now: clock.now, alerts: policy)
        let before = AlertDispatcher(policy: policy, store: store, clusterName: "test", logger: logs.logger("alerts"), clock: clock.read)
        let failed = try await before.deliverDue(now: clock.now)
        XCTAssertEqual(failed.retried, 1)
        try store.close()

        // The coordinator restarts: a new store and dispatcher find the alerts where they were.
        store = try openStore()
        clock.advance(by: 1_000)
        let after = AlertDispatcher(policy: policy, store: store, clusterName: "test", logger: logs.logger("alerts"), clock: clock.read)
        let pass = try await after.deliverDue(now: clock.now)
        XCTAssertEqual(pass.delivered, 2)
        XCTAssertEqual(webhook.acceptedIDs, queued.map(\.id))
        let pending = try await store.pendingAlertCount()
        XCTAssertEqual(pending, 0)
        await server.shutdown()
    }

    func testARefusedAlertIsNotRetriedAndTheNextOneStillGoes() async throws {
        let webhook = Webhook(failures: 1, failStatus: 404)
        let (server, url) = try await serve(webhook)
        let store = try seeded()
        let policy = AlertPolicy(webhookURL: url, minSeverity: .low)
        let two = [anomaly("BTCUSDT", .priceShock, .low, windowStartMs: start), anomaly("ETHUSDT", .priceShock, .low, windowStartMs: start)]
        _ = try await store.storeReport(ReportRequest(workerID: "w1", partition: 0, epoch: 1, anomalies: two), now: start, alerts: policy)
        let dispatcher = AlertDispatcher(policy: policy, store: store, clusterName: "test", logger: logs.logger("alerts"), clock: ManualClock(start).read)
        let pass = try await dispatcher.deliverDue(now: start)
        XCTAssertEqual(pass, AlertDispatcher.Pass(delivered: 1, refused: 1, retried: 0))
        let queued = try await store.queuedAlerts()
        XCTAssertEqual(queued.map(\.state), [.failed, .delivered])
        XCTAssertEqual(queued.first?.lastError?.hasPrefix("HTTP 404"), true)
        XCTAssertTrue(logs.contains("alert refused by the webhook; not retrying"))
        await server.shutdown()
    }

    func testWebhookOutcomesAndBackoff() {
        XCTAssertEqual(WebhookOutcome.of(status: 200, body: "ok"), .delivered)
        XCTAssertEqual(WebhookOutcome.of(status: 429, body: "slow down"), .retry("HTTP 429 slow down"))
        XCTAssertEqual(WebhookOutcome.of(status: 500, body: ""), .retry("HTTP 500"))
        XCTAssertEqual(WebhookOutcome.of(status: 410, body: "channel_is_archived"), .refused("HTTP 410 channel_is_archived"))
        XCTAssertEqual((1...12).map { AlertDispatcher.backoff(afterAttempts: $0, initialMs: 1_000, maxMs: 300_000) },
                       [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000, 300_000])
    }
}
