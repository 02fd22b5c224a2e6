/// Tracks, per partition, the next offset a consumer expects, and classifies each delivered
/// offset against it. Pure state machine: `KafkaConsumer` feeds it; tests drive it directly.
///
/// A partition assigned at a concrete offset expects exactly that offset first; one assigned at
/// `KafkaOffset.beginning`/`.end` learns its position from the first record. After that every
/// record must follow the previous one. A jump forward means offsets were skipped (the log start
/// moved past them: retention; also normal on compacted or transactional topics); a jump back
/// means the consumer was reset to an earlier position (the requested offset was beyond the log
/// end, e.g. the broker restarted empty, and `auto.offset.reset` moved it to the log start).
struct OffsetContinuity {
    enum Verdict: Equatable {
        case inOrder
        /// Offsets in the range were expected but never delivered.
        case skipped(Range<Int64>)
        /// The offset delivered is below the one expected.
        case rewound(expected: Int64)
    }

    /// Index = partition id; -1 = not known yet.
    private var expected: [Int64] = []

    /// Replaces the whole assignment.
    mutating func assign(_ partitions: [(partition: Int32, offset: Int64)]) {
        expected = Array(repeating: -1, count: Int(partitions.map(\.partition).max() ?? -1) + 1)
        for (partition, offset) in partitions where partition >= 0 {
            expected[Int(partition)] = offset >= 0 ? offset : -1
        }
    }

    /// Classifies `offset` for `partition` and expects `offset + 1` next.
    mutating func observe(partition: Int32, offset: Int64) -> Verdict {
        let index = Int(partition)
        guard index >= 0 else { return .inOrder }
        if index >= expected.count {
            expected += Array(repeating: -1, count: index + 1 - expected.count)
        }
        let wanted = expected[index]
        expected[index] = offset + 1
        if wanted < 0 || offset == wanted { return .inOrder }
        return offset > wanted ? .skipped(wanted..<offset) : .rewound(expected: wanted)
    }
}
