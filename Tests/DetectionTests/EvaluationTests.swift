import XCTest

@testable import Detection

/// `DetectionEvaluation` on hand-made alerts and labels.
final class EvaluationTests: XCTestCase {
    private func alert(
        _ symbol: String, _ kind: AnomalyKind, start: Int64, detected: Int64? = nil, suppressed: Bool = false
    ) -> DetectionEvaluation.Detection {
        DetectionEvaluation.Detection(
            symbol: symbol, kind: kind, windowStartMs: start, windowEndMs: start + 60_000,
            detectedAtMs: detected ?? start + 60_000, suppressed: suppressed)
    }

    private let labels = [
        DetectionEvaluation.Label(symbol: "BTC", kind: .flashCrash, startMs: 100_000, endMs: 150_000),
        DetectionEvaluation.Label(symbol: "ETH", kind: .liquidityGap, startMs: 200_000, endMs: 300_000),
        DetectionEvaluation.Label(symbol: "ETH", kind: .volumeSpike, startMs: 500_000, endMs: 600_000),
    ]

    func testRecallPrecisionAndDelay() throws {
        let detections = [
            // BTC crash: first seen as a price shock (window 60 000..120 000, detected at 120 000: 20 s after
            // the start), named by the pattern later (140 000). Related kinds count; the earliest sets the delay.
            alert("BTC", .priceShock, start: 60_000),
            alert("BTC", .flashCrash, start: 80_000),
            alert("BTC", .flashCrash, start: 100_000, suppressed: true),  // a repeat: ignored entirely
            // ETH gap: only a volume spike overlaps it, which is not a related kind: missed, but not a false alarm.
            alert("ETH", .volumeSpike, start: 250_000),
            // ETH volume spike: hit by a trade-count spike 40 s after its start.
            alert("ETH", .tradeCountSpike, start: 480_000),
            // False alarms: another symbol, and a window ending exactly at the label's start (no shared ms).
            alert("SOL", .priceShock, start: 100_000),
            alert("BTC", .priceShock, start: 40_000),
        ]
        let report = DetectionEvaluation.evaluate(detections, labels: labels)
        XCTAssertEqual(report.alerts, 6)
        XCTAssertEqual(report.suppressed, 1)
        XCTAssertEqual(report.truePositives, 4)
        XCTAssertEqual(try XCTUnwrap(report.precision), 4.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(report.falseAlarms.map(\.symbol), ["SOL", "BTC"])
        XCTAssertEqual(report.missed.map(\.kind), [.liquidityGap])

        XCTAssertEqual(report.kinds.map(\.kind), [.volumeSpike, .flashCrash, .liquidityGap], "in AnomalyKind order")
        let crash = report.kinds[1]
        XCTAssertEqual([crash.labels, crash.hit, crash.exact], [1, 1, 1])
        XCTAssertEqual(crash.delaysMs, [20_000])
        let gap = report.kinds[2]
        XCTAssertEqual([gap.labels, gap.hit, gap.exact], [1, 0, 0])
        XCTAssertNil(gap.medianDelayMs)
        XCTAssertEqual(gap.recall, 0)
        let volume = report.kinds[0]
        XCTAssertEqual([volume.hit, volume.exact], [1, 0], "hit through a related kind, not its own")
        XCTAssertEqual(volume.delaysMs, [40_000])

        XCTAssertEqual([report.overall.labels, report.overall.hit, report.overall.exact], [3, 2, 1])
        XCTAssertEqual(try XCTUnwrap(report.overall.recall), 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(report.overall.medianDelayMs, 30_000, "mean of the two middle delays, 20 s and 40 s")
    }

    func testNoLabelsMakesEveryAlertAFalseAlarm() {
        let report = DetectionEvaluation.evaluate([alert("BTC", .priceShock, start: 0), alert("BTC", .priceShock, start: 20_000, suppressed: true)], labels: [])
        XCTAssertEqual(report.alerts, 1)
        XCTAssertEqual(report.falseAlarms.count, 1)
        XCTAssertEqual(report.precision, 0)
        XCTAssertNil(report.overall.recall)
        XCTAssertTrue(report.kinds.isEmpty)
        XCTAssertNil(DetectionEvaluation.evaluate([], labels: []).precision)
    }

    func testRelatedKinds() {
        let related = DetectionEvaluation.relatedKinds
        XCTAssertEqual(related(.liquidityGap), [.liquidityGap, .isolationOutlier])
        XCTAssertTrue(related(.flashCrash).isSuperset(of: [.priceShock, .flashCrash]))
        XCTAssertFalse(related(.flashCrash).contains(.volumeSpike))
        XCTAssertTrue(related(.pumpAndDump).isSuperset(of: [.priceShock, .volumeSpike, .tradeCountSpike]))
        XCTAssertTrue(related(.volatilityBurst).contains(.volatilityShock))
        XCTAssertFalse(related(.priceShock).contains(.volumeSpike))
        for kind in AnomalyKind.allCases {
            XCTAssertTrue(related(kind).contains(kind))
        }
    }
}
