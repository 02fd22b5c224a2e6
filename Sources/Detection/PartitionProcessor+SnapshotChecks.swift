extension PartitionProcessor {
    /// Whether a pane read from a snapshot could have been built by `Pane.add`: its times inside
    /// its own slide, its counts and sequences within what the partition has seen. A snapshot
    /// with its checksum intact can still have been written by something else; a pane outside
    /// these bounds would make later window arithmetic overflow and trap (found by fuzzing), so
    /// it is refused as corrupt instead.
    static func isPossible(_ pane: Pane, slideMs: Int64, windowed: Int64, nextOffset: Int64) -> Bool {
        let (start, overflow) = pane.index.multipliedReportingOverflow(by: slideMs)
        guard !overflow, start <= Int64.max - slideMs else { return false }
        let end = start + slideMs
        return pane.count >= 1 && pane.count <= windowed
            && pane.minTimeMs >= start && pane.minTimeMs <= pane.maxTimeMs && pane.maxTimeMs < end
            && pane.longestGapMs >= 0 && pane.longestGapMs < slideMs
            && pane.runTimeMs >= start && pane.runTimeMs < end
            && pane.rushClusters >= 0 && pane.rushClusters <= pane.count
            && pane.runFills >= 1 && pane.runFills <= pane.count
            && pane.firstSequence >= 0 && pane.firstSequence <= pane.lastSequence && pane.lastSequence < nextOffset
    }
}
