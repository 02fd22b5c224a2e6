import Protocol

/// Decides when a worker logs its progress lines, and what they say: per running partition,
/// records arriving and processed per second since the previous lines, lag, and how far the
/// watermark trails the wall clock. A pure state machine: `now` (wall-clock ms) comes in.
///
/// The first call only sets the baseline; later calls return lines once `intervalMs` has passed
/// since the previous lines. A partition seen for the first time (or under a new epoch) gets
/// "-" for its rates until the next lines.
struct WorkerMetricsProgressLog: Sendable {
    var intervalMs: Int64 = 5_000
    private var lastAtMs: Int64?
    private var previous: [Int32: PartitionProgress] = [:]

    mutating func lines(_ progress: [PartitionProgress], now: Int64) -> [String] {
        guard let last = lastAtMs else {
            lastAtMs = now
            previous = Dictionary(progress.map { ($0.partition, $0) }, uniquingKeysWith: { $1 })
            return []
        }
        guard now - last >= intervalMs else { return [] }
        let seconds = Double(now - last) / 1_000
        let lines = progress.sorted { $0.partition < $1.partition }.map { p -> String in
            let before = previous[p.partition].flatMap { $0.epoch == p.epoch ? $0 : nil }
            let processed = before.map { Self.rate(p.nextOffset - $0.nextOffset, seconds) } ?? "-"
            let arriving = before.flatMap { b in
                b.logEndOffset >= 0 && p.logEndOffset >= 0 ? Self.rate(p.logEndOffset - b.logEndOffset, seconds) : nil
            } ?? "-"
            let lag = p.logEndOffset >= 0 && p.nextOffset >= 0 ? String(max(0, p.logEndOffset - p.nextOffset)) : "-"
            let watermark = p.watermarkMs == .min ? "none yet" : Self.seconds(now - p.watermarkMs) + " behind"
            return "progress partition=\(p.partition) epoch=\(p.epoch) in/s=\(arriving) processed/s=\(processed) lag=\(lag) watermark=\(watermark) offset=\(p.nextOffset)"
        }
        lastAtMs = now
        previous = Dictionary(progress.map { ($0.partition, $0) }, uniquingKeysWith: { $1 })
        return lines
    }

    private static func rate(_ delta: Int64, _ seconds: Double) -> String {
        let value = Double(max(0, delta)) / seconds
        return value >= 100 ? String(Int(value.rounded())) : String((value * 10).rounded() / 10)
    }

    private static func seconds(_ ms: Int64) -> String {
        let s = Double(ms) / 1_000
        return s >= 100 ? "\(Int(s.rounded()))s" : "\((s * 10).rounded() / 10)s"
    }
}
