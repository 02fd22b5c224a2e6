import Protocol

/// Set arithmetic on offset ranges `[from, to)`, so that a loss reported again after a replay
/// (the same range, or one overlapping it from a different checkpoint) is stored and shown once.
enum OffsetRanges {
    /// The parts of `range` that none of `known` covers, in order. Empty when `range` is empty
    /// or fully covered.
    static func subtracting(_ range: OffsetRange, _ known: [OffsetRange]) -> [OffsetRange] {
        var pieces: [OffsetRange] = []
        var from = range.from
        for cover in union(known) where cover.to > from {
            if cover.from >= range.to { break }
            if cover.from > from { pieces.append(OffsetRange(from: from, to: cover.from)) }
            from = max(from, cover.to)
            if from >= range.to { break }
        }
        if from < range.to { pieces.append(OffsetRange(from: from, to: range.to)) }
        return pieces
    }

    /// The union of `ranges`: sorted, with overlapping and adjacent ranges merged, empty ones dropped.
    static func union(_ ranges: [OffsetRange]) -> [OffsetRange] {
        var merged: [OffsetRange] = []
        for range in ranges.filter({ $0.to > $0.from }).sorted(by: { ($0.from, $0.to) < ($1.from, $1.to) }) {
            if let last = merged.last, range.from <= last.to {
                merged[merged.count - 1].to = max(last.to, range.to)
            } else {
                merged.append(range)
            }
        }
        return merged
    }
}
