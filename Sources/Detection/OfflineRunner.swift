/// Backtests a JSON-lines file of trades exactly as the cluster would process it, for
/// `vigil detect`.
///
/// Each non-empty line is one record (a trailing `\r` is dropped; lines of only whitespace are
/// skipped and numbered nowhere). A record goes to the partition Kafka's default partitioner
/// gives its key (`Murmur2Partitioner` over `TradeKey.symbolRange`, the symbol bytes as
/// written, which is what the ingest producer keys by), and offsets are numbered per partition
/// from 0 in file order. One `PartitionProcessor` runs per partition, so the anomalies equal
/// the cluster's for the same partition count.
///
/// A line that is not a valid trade but has a usable symbol goes to its symbol's partition and
/// is reported there as malformed, as in the cluster. A line without a usable symbol has no
/// partition to go to: it goes to partition 0 and is counted and reported there as malformed,
/// so that every line is accounted for (`records == consumed`, summed over partitions). Note
/// that `vigil ingest replay` does not produce such lines at all, so a file that has them gives
/// partition 0 later offsets here than in the cluster (anomaly ids and values are unaffected,
/// their `offset` field is).
///
/// Streaming: `feed` takes chunks of any size (lines may straddle chunks); only a partial
/// last line is buffered, so a file of millions of lines needs no array of lines.
public struct OfflineRunner: Sendable {
    public let partitionCount: Int32
    private var processors: [PartitionProcessor]
    private var nextOffsets: [Int64]
    private var output = ProcessorOutput()
    /// Bytes of a line not yet terminated by a newline.
    private var pending: [UInt8] = []
    /// Non-empty lines processed so far.
    public private(set) var records: Int64 = 0

    /// A runner over `partitionCount` partitions (a count below 1 is treated as 1).
    public init(partitionCount: Int32, config: DetectionConfig) {
        let count = max(1, partitionCount)
        self.partitionCount = count
        processors = (0..<count).map { PartitionProcessor(partition: $0, config: config) }
        nextOffsets = Array(repeating: 0, count: Int(count))
    }

    /// Processes every complete line in `chunk`, keeping a trailing partial line for later.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer) {
        var start = 0
        for i in 0..<chunk.count where chunk[i] == UInt8(ascii: "\n") {
            let piece = UnsafeRawBufferPointer(rebasing: chunk[start..<i])
            if pending.isEmpty {
                processLine(piece)
            } else {
                pending.append(contentsOf: piece)
                flushPending()
            }
            start = i + 1
        }
        if start < chunk.count {
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start...]))
        }
    }

    /// `feed` for bytes in an array.
    public mutating func feed(_ chunk: [UInt8]) {
        chunk.withUnsafeBytes { feed($0) }
    }

    /// Processes a last line without a final newline, and reports everything so far.
    public mutating func finish() -> OfflineReport {
        if !pending.isEmpty { flushPending() }
        return report
    }

    /// Everything processed so far, sorted (see `OfflineReport`). A pending partial line is not
    /// included until `finish()`.
    public var report: OfflineReport {
        var anomalies = output.anomalies
        anomalies.sort {
            ($0.windowStartMs, $0.symbol, $0.kind.rawValue) < ($1.windowStartMs, $1.symbol, $1.kind.rawValue)
        }
        var windows = output.windows
        windows.sort { ($0.startMs, $0.symbol, $0.endMs) < ($1.startMs, $1.symbol, $1.endMs) }
        var late = output.lateEvents
        late.sort { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
        var malformed = output.malformed
        malformed.sort { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
        return OfflineReport(
            anomalies: anomalies, windows: windows, lateEvents: late, malformed: malformed,
            partitions: processors.map(\.stats), records: records)
    }

    private mutating func flushPending() {
        var line: [UInt8] = []
        swap(&line, &pending)
        line.withUnsafeBytes { processLine($0) }
        line.removeAll(keepingCapacity: true)
        swap(&line, &pending)
    }

    private mutating func processLine(_ raw: UnsafeRawBufferPointer) {
        var line = raw
        if let last = line.last, last == UInt8(ascii: "\r") {
            line = UnsafeRawBufferPointer(rebasing: line.dropLast())
        }
        guard line.contains(where: { !Self.isWhitespace($0) }) else { return }
        let parsed = Result { () throws(TradeParseError) -> Trade in try TradeParser.parse(line) }
        let partition: Int32
        if let key = TradeKey.symbolRange(in: line) {
            partition = Murmur2Partitioner.partition(key: line[key], partitionCount: partitionCount)
        } else if case .success(let trade) = parsed {
            // Valid JSON the lenient key rule misses (e.g. a carriage return before the colon).
            partition = trade.symbol.withUnsafeBytes {
                Murmur2Partitioner.partition(key: $0, partitionCount: partitionCount)
            }
        } else {
            partition = 0
        }
        let index = Int(partition)
        let offset = nextOffsets[index]
        nextOffsets[index] += 1
        records += 1
        processors[index].process(offset: offset, parsed: parsed, payload: line, into: &output)
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}

/// The result of an offline run.
public struct OfflineReport: Sendable, Equatable {
    /// Sorted by (window start, symbol, kind).
    public var anomalies: [Anomaly]
    /// Every closed window, sorted by (start, symbol).
    public var windows: [WindowSummary]
    /// Sorted by (partition, offset).
    public var lateEvents: [LateEvent]
    /// Sorted by (partition, offset).
    public var malformed: [MalformedRecord]
    /// Stats by partition (index = partition number).
    public var partitions: [ProcessorStats]
    /// Records (non-empty lines) read.
    public var records: Int64

    /// Counters summed over partitions (`watermarkMs` is the largest, `nextOffset` the total).
    public var totals: ProcessorStats {
        var total = ProcessorStats()
        for s in partitions {
            total.consumed += s.consumed
            total.windowed += s.windowed
            total.late += s.late
            total.malformed += s.malformed
            total.windowsClosed += s.windowsClosed
            total.windowsSkipped += s.windowsSkipped
            total.anomalies += s.anomalies
            total.suppressed += s.suppressed
            total.watermarkMs = max(total.watermarkMs, s.watermarkMs)
            total.nextOffset += s.nextOffset
            total.symbols += s.symbols
        }
        return total
    }
}
