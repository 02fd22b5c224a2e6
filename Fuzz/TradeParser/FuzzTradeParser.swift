import Detection
import FuzzSupport

/// Fuzzes the trade parser and the partition processor behind it: the input is split into
/// lines, each a Kafka record; every line is parsed (a trade that parses must be a possible
/// trade), then all of them go through a fresh `PartitionProcessor` with small windows and the
/// input limits on, and its snapshot must restore. Nothing may trap.
@main
enum FuzzTradeParser {
    static func main() {
        var config = DetectionConfig.withInputLimits
        config.windowMs = 3_000
        config.slideMs = 1_000
        config.allowedLatenessMs = 500
        config.baselineWindows = 4
        config.minHistory = 2
        config.policy = .any
        config.inputLimits?.maxSymbolsPerPartition = 8
        FuzzMain.run("FuzzTradeParser") { input in
            var processor = PartitionProcessor(partition: 0, config: config)
            var output = ProcessorOutput()
            var offset: Int64 = 0
            for line in input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                let record = UnsafeRawBufferPointer(rebasing: line)
                if let trade = try? TradeParser.parse(record) {
                    precondition(trade.price > 0 && trade.price.isFinite, "parsed an impossible price \(trade.price)")
                    precondition(trade.quantity >= 0 && trade.quantity.isFinite, "parsed an impossible quantity \(trade.quantity)")
                    precondition(SymbolKey(trade.symbol.string) != nil, "parsed an invalid symbol")
                }
                processor.process(offset: offset, payload: record, into: &output)
                offset += 1
            }
            let stats = processor.stats
            precondition(stats.consumed == stats.windowed + stats.late + stats.malformed, "counters do not add up: \(stats)")
            let snapshot = processor.snapshot()
            guard let restored = try? PartitionProcessor(partition: 0, config: config, restoring: snapshot) else {
                preconditionFailure("a processor's own snapshot does not restore")
            }
            precondition(restored.snapshot() == snapshot, "a restored processor snapshots differently")
        }
    }
}
