@testable import Kafka
import XCTest

final class OffsetContinuityTests: XCTestCase {
    func testConcreteStartOffsetMustComeFirstThenEveryOffsetInTurn() {
        var continuity = OffsetContinuity()
        continuity.assign([(partition: 0, offset: 10), (partition: 2, offset: 0)])
        XCTAssertEqual(continuity.observe(partition: 0, offset: 10), .inOrder)
        XCTAssertEqual(continuity.observe(partition: 0, offset: 11), .inOrder)
        XCTAssertEqual(continuity.observe(partition: 2, offset: 0), .inOrder)
        XCTAssertEqual(continuity.observe(partition: 0, offset: 15), .skipped(12..<15))
        XCTAssertEqual(continuity.observe(partition: 0, offset: 16), .inOrder)
    }

    func testStartBelowLogStartIsReportedAsSkipped() {
        var continuity = OffsetContinuity()
        continuity.assign([(partition: 1, offset: 0)])
        XCTAssertEqual(continuity.observe(partition: 1, offset: 3842), .skipped(0..<3842))
    }

    func testLogicalStartLearnsPositionFromFirstRecord() {
        var continuity = OffsetContinuity()
        continuity.assign([(partition: 0, offset: KafkaOffset.beginning), (partition: 1, offset: KafkaOffset.end)])
        XCTAssertEqual(continuity.observe(partition: 0, offset: 500), .inOrder)
        XCTAssertEqual(continuity.observe(partition: 1, offset: 7), .inOrder)
        XCTAssertEqual(continuity.observe(partition: 1, offset: 9), .skipped(8..<9))
    }

    func testResetBelowExpectedIsRewound() {
        var continuity = OffsetContinuity()
        continuity.assign([(partition: 0, offset: 5000)])
        XCTAssertEqual(continuity.observe(partition: 0, offset: 0), .rewound(expected: 5000))
        XCTAssertEqual(continuity.observe(partition: 0, offset: 1), .inOrder)
    }

    func testReassignForgetsPreviousPositions() {
        var continuity = OffsetContinuity()
        continuity.assign([(partition: 3, offset: 100)])
        XCTAssertEqual(continuity.observe(partition: 3, offset: 100), .inOrder)
        continuity.assign([(partition: 3, offset: 40)])
        XCTAssertEqual(continuity.observe(partition: 3, offset: 40), .inOrder)
        continuity.assign([])
        XCTAssertEqual(continuity.observe(partition: 3, offset: 77), .inOrder, "an unknown partition learns its position")
    }
}
