import XCTest

@testable import Detection

/// Throughput sanity prints, not assertions (timed tests flake on shared machines). Numbers
/// mean something only in release: `swift test -c release -Xswiftc -enable-testing`.
final class ThroughputTests: XCTestCase {
    func testPrintParserAndProcessorThroughput() throws {
        let lines = try RealData.lines(RealData.spot)
        let rounds = 3
        let clock = ContinuousClock()
        var checksum = 0.0
        let parse = clock.measure {
            for _ in 0..<rounds {
                for line in lines {
                    line.withUnsafeBytes { if let trade = try? TradeParser.parse($0) { checksum += trade.price } }
                }
            }
        }
        var processor = PartitionProcessor(partition: 0, config: DetectionConfig())
        var output = ProcessorOutput()
        let process = clock.measure {
            for (offset, line) in lines.enumerated() {
                line.withUnsafeBytes { processor.process(offset: Int64(offset), payload: $0, into: &output) }
            }
        }
        XCTAssertEqual(processor.stats.consumed, Int64(lines.count))
        XCTAssertGreaterThan(checksum, 0)
        func rate(_ n: Int, _ d: Duration) -> String {
            let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            return formatFixed(Double(n) / seconds / 1e6, decimals: 2) + " M/s"
        }
        print("throughput: parse \(rate(lines.count * rounds, parse)), process \(rate(lines.count, process))")
    }
}
