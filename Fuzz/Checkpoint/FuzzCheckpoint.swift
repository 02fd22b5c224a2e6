import Detection
import Foundation
import FuzzSupport

/// Fuzzes the checkpoint decoder (`PartitionProcessor(restoring:)`) with arbitrary bytes, as a
/// damaged or hostile checkpoint would arrive from the coordinator's store: it must throw a
/// `SnapshotError`, never trap, never allocate without bound; and whatever it accepts must be
/// a processor whose snapshot restores and round-trips, and which goes on processing trades.
///
/// Input: a mode byte, then the snapshot. Mode 0 decodes the rest as it is (random bytes rarely
/// get past the checksum); any other mode appends the right checksum first, so the fuzzer
/// explores the decoder behind it, as a hostile writer who knows the format would.
@main
enum FuzzCheckpoint {
    static let config: DetectionConfig = {
        var config = DetectionConfig.withInputLimits
        config.windowMs = 3_000
        config.slideMs = 1_000
        config.allowedLatenessMs = 500
        config.baselineWindows = 4
        config.minHistory = 2
        config.policy = .any
        return config
    }()

    static func main() {
        if CommandLine.arguments.count == 3, CommandLine.arguments[1] == "--write-seeds" {
            writeSeeds(to: CommandLine.arguments[2])
        }
        let probe = Array(#"{"s":"BTCUSDT","t":9000000000,"p":"61000.5","q":"0.25","T":1700000100000,"m":false}"#.utf8)
        FuzzMain.run("FuzzCheckpoint") { input in
            guard let mode = input.first else { return }
            var bytes = Array(input.dropFirst())
            if mode != 0 { bytes += checksum(bytes) }
            guard var restored = try? PartitionProcessor(partition: 0, config: config, restoring: bytes) else { return }
            // The encoding need not be canonical (any pane order is read), but one round trip is.
            let again = restored.snapshot()
            guard let twice = try? PartitionProcessor(partition: 0, config: config, restoring: again) else {
                preconditionFailure("the snapshot of a restored processor does not restore")
            }
            precondition(twice.snapshot() == again, "snapshot, restore, snapshot changed the bytes")
            var output = ProcessorOutput()
            probe.withUnsafeBytes { restored.process(offset: restored.stats.nextOffset, payload: $0, into: &output) }
        }
    }
}

extension FuzzCheckpoint {
    /// Writes snapshots of processors fed with synthetic trades (none, a few, enough to close
    /// windows and raise anomalies, several symbols) as seed inputs, then exits.
    static func writeSeeds(to directory: String) -> Never {
        var processor = PartitionProcessor(partition: 0, config: config)
        var output = ProcessorOutput()
        var seeds: [[UInt8]] = [processor.snapshot()]
        var price = 100.0
        for i in 0..<400 {
            let symbol = ["BTCUSDT", "ETHUSDT", "SOLUSDT"][i % 3]
            price *= i == 300 ? 1.2 : 1.0005
            let line = #"{"e":"trade","s":"\#(symbol)","t":\#(1_000 + i),"p":"\#(String(format: "%.4f", price))","q":"\#(1 + i % 7)","T":\#(1_700_000_000_000 + Int64(i) * 150),"m":\#(i % 2 == 0)}"#
            Array(line.utf8).withUnsafeBytes { processor.process(offset: Int64(i), payload: $0, into: &output) }
            if [3, 40, 150, 399].contains(i) { seeds.append(processor.snapshot()) }
        }
        for (index, seed) in seeds.enumerated() {
            FileManager.default.createFile(atPath: "\(directory)/snapshot-\(index)", contents: Data([0] + seed))
            FileManager.default.createFile(atPath: "\(directory)/unsealed-\(index)", contents: Data([1] + seed.dropLast(8)))
        }
        print("wrote \(seeds.count) seeds; \(output.anomalies.count) anomalies, \(output.windows.count) windows along the way")
        exit(0)
    }
}

/// The FNV-1a 64 checksum snapshots end with, little-endian.
func checksum(_ bytes: [UInt8]) -> [UInt8] {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01b3
    }
    return withUnsafeBytes(of: hash.littleEndian) { Array($0) }
}
