import Foundation
import XCTest

/// Helpers shared by the Ingest tests.
enum IngestTestSupport {
    /// A real Binance trade recording from the shared data set (never copied into the repo).
    static func realTrades(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // KafkaTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // repository root
            .appendingPathComponent("../shared/data/real/\(name)")
            .standardizedFileURL
    }

    /// A fresh directory, removed by the returned cleanup.
    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-ingest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }
}
