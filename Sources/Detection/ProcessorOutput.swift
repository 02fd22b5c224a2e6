/// What processing records produced, appended to by `PartitionProcessor.process`.
///
/// Reuse one value across batches and call `removeAll(keepingCapacity: true)` after handing
/// its contents on, so that steady-state processing does not allocate.
public struct ProcessorOutput: Sendable, Equatable {
    /// Anomalies, suppressed repeats included, in the order their windows closed.
    public var anomalies: [Anomaly] = []
    /// Every closed window of every symbol, empty ones included.
    public var windows: [WindowSummary] = []
    public var lateEvents: [LateEvent] = []
    public var malformed: [MalformedRecord] = []

    public init() {}

    public var isEmpty: Bool {
        anomalies.isEmpty && windows.isEmpty && lateEvents.isEmpty && malformed.isEmpty
    }

    public mutating func removeAll(keepingCapacity: Bool = false) {
        anomalies.removeAll(keepingCapacity: keepingCapacity)
        windows.removeAll(keepingCapacity: keepingCapacity)
        lateEvents.removeAll(keepingCapacity: keepingCapacity)
        malformed.removeAll(keepingCapacity: keepingCapacity)
    }

    /// Appends everything `other` holds.
    public mutating func append(contentsOf other: ProcessorOutput) {
        anomalies.append(contentsOf: other.anomalies)
        windows.append(contentsOf: other.windows)
        lateEvents.append(contentsOf: other.lateEvents)
        malformed.append(contentsOf: other.malformed)
    }
}

/// Counters of one partition's processing; part of its snapshot.
///
/// Invariant: `consumed == windowed + late + malformed`.
public struct ProcessorStats: Sendable, Equatable, Codable {
    /// Records processed.
    public var consumed: Int64 = 0
    /// Trades applied to windows (on time).
    public var windowed: Int64 = 0
    /// Trades older than the watermark when they arrived: recorded, not applied.
    public var late: Int64 = 0
    /// Records that are not trades.
    public var malformed: Int64 = 0
    /// Windows closed and evaluated (each produced a `WindowSummary`).
    public var windowsClosed: Int64 = 0
    /// Empty windows not evaluated because the watermark jumped far past them (see
    /// `PartitionProcessor`, "Long silences").
    public var windowsSkipped: Int64 = 0
    /// Anomalies reported, suppressed repeats included.
    public var anomalies: Int64 = 0
    /// Of `anomalies`, those suppressed by a cooldown.
    public var suppressed: Int64 = 0
    /// Event-time watermark (ms); `Int64.min` before the first on-time trade.
    public var watermarkMs: Int64 = .min
    /// One past the offset of the last record processed; 0 before any.
    public var nextOffset: Int64 = 0
    /// Symbols with window state.
    public var symbols: Int64 = 0

    public init() {}
}
