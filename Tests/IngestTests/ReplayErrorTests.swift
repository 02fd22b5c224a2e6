import Ingest
import XCTest

final class ReplayErrorTests: XCTestCase {
    /// A missing file is one clear error naming the path, not a crash.
    func testMissingFileNamesThePath() {
        XCTAssertThrowsError(try ReplaySource(path: "/nonexistent/trades.jsonl")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/trades.jsonl"), "\(error)")
        }
    }
}
