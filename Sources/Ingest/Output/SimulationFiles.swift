/// What `MarketSimulator.writeFiles` wrote.
public struct SimulationFileSummary: Sendable, Equatable {
    /// Trade lines written.
    public var trades: Int
    /// Trades per symbol.
    public var tradesPerSymbol: [String: Int]
    /// Label lines written.
    public var labels: Int
    /// `T` of the first and last trade written, or nil when none was.
    public var firstTimeMs: Int64?
    public var lastTimeMs: Int64?
    /// True when the task was cancelled before the simulation ended; the files hold what was
    /// generated until then (complete lines only).
    public var cancelled: Bool
}

extension MarketSimulator {
    /// Writes the rest of the simulation to `tradesPath` as JSON lines, and the labels of the
    /// anomalies it contains to `labelsPath` (when given), each label as the trade stream reaches
    /// its start. Existing files are replaced.
    ///
    /// Runs at full speed on the calling thread; checks for task cancellation every 64 Ki trades
    /// and then stops, closing both files with what was written so far.
    /// - Throws: `IngestError` `.cannotOpen` or `.writeFailed` naming the file.
    public mutating func writeFiles(tradesPath: String, labelsPath: String?) throws(IngestError) -> SimulationFileSummary {
        let tradesFile = try LineFileWriter(path: tradesPath)
        let labelsFile = try labelsPath.map { path throws(IngestError) in try LineFileWriter(path: path) }
        var summary = SimulationFileSummary(trades: 0, tradesPerSymbol: [:], labels: 0, firstTimeMs: nil,
                                            lastTimeMs: nil, cancelled: false)
        var counts = [Int](repeating: 0, count: symbols.count)
        var record = IngestRecord()

        func writeLabels(_ labels: [AnomalyLabel]) throws(IngestError) {
            guard let labelsFile else { return }
            for label in labels { try labelsFile.writeLine(label.jsonLine) }
            summary.labels += labels.count
        }

        while next(into: &record) {
            try writeLabels(takeLabels(startedBy: record.timeMs))
            try tradesFile.writeLine(record.line)
            counts[record.symbolIndex] += 1
            summary.trades += 1
            if summary.firstTimeMs == nil { summary.firstTimeMs = record.timeMs }
            summary.lastTimeMs = record.timeMs
            if summary.trades & 0xFFFF == 0, Task.isCancelled {
                summary.cancelled = true
                break
            }
        }
        if !summary.cancelled { try writeLabels(takeLabels(startedBy: .max)) }
        try tradesFile.close()
        try labelsFile?.close()
        for (index, count) in counts.enumerated() where count > 0 { summary.tradesPerSymbol[symbols[index]] = count }
        return summary
    }
}
