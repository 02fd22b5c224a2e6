/// How fast an `Ingestor` hands records to its sink.
public enum Pacing: Sendable, Equatable, CustomStringConvertible {
    /// As fast as the sink accepts them (Kafka's local queue applies backpressure).
    case max
    /// Replays event time `factor` times faster than the wall clock: a record whose trade time
    /// is `d` ms after the first record's is sent `d / factor` ms after the run started. Records
    /// whose time is not after the latest one released go out at once (a file slightly out of
    /// order is not held back). `factor` must be positive and finite.
    case scaled(Double)
    /// A steady number of records per second of wall time, whatever their trade times: the
    /// `n`-th record is sent `n / perSecond` s after the first (a load test). Must be positive and finite.
    case rate(Double)

    /// Event time tracks the wall clock (`.scaled(1)`). For the simulator this yields its
    /// configured `tradesPerSecond` in real time; start it at the current time
    /// (`SimulatorConfig.startMs`) for trade times that match the clock.
    public static let realTime = Pacing.scaled(1)

    public var description: String {
        switch self {
        case .max: "max"
        case .scaled(let factor): factor == 1 ? "real time" : "\(factor)x event time"
        case .rate(let perSecond): "\(perSecond) records/s"
        }
    }

    var isValid: Bool {
        switch self {
        case .max: true
        case .scaled(let value), .rate(let value): value.isFinite && value > 0
        }
    }
}

/// Holds records back until they are due by their `Pacing`.
///
/// Due times are computed from the first record's instant, never from the previous send, so a
/// sink or a scheduler that falls behind catches up instead of drifting; records are never
/// sent before they are due.
struct Pacer<C: Clock> where C.Duration == Duration {
    let pacing: Pacing
    let clock: C
    private var anchor: (instant: C.Instant, timeMs: Int64)?
    /// `.scaled`: every record with a trade time up to this one may go without a look at the clock.
    private var releasedThroughMs = Int64.min
    /// `.rate`: records released so far.
    private var released = 0

    init(pacing: Pacing, clock: C) {
        self.pacing = pacing
        self.clock = clock
    }

    /// Waits until the record with trade time `timeMs` is due, calling `beforeWaiting` first
    /// when it has to wait. Returns false when the task was cancelled (a wait ends at once then).
    mutating func release(_ timeMs: Int64, beforeWaiting: () -> Void) async -> Bool {
        let due: C.Instant
        switch pacing {
        case .max:
            return true
        case .scaled(let factor):
            guard timeMs > releasedThroughMs else { return !Task.isCancelled }
            releasedThroughMs = timeMs
            guard let anchor else {
                anchor = (clock.now, timeMs)
                return !Task.isCancelled
            }
            due = anchor.instant.advanced(by: Self.nanoseconds(Double(timeMs - anchor.timeMs) * 1e6 / factor))
        case .rate(let perSecond):
            defer { released += 1 }
            guard let anchor else {
                anchor = (clock.now, timeMs)
                return !Task.isCancelled
            }
            due = anchor.instant.advanced(by: Self.nanoseconds(Double(released) * 1e9 / perSecond))
        }
        if due > clock.now {
            beforeWaiting()
            do {
                try await clock.sleep(until: due, tolerance: nil)
            } catch {
                return false  // only cancellation ends a clock's sleep early
            }
        }
        return !Task.isCancelled
    }

    private static func nanoseconds(_ value: Double) -> Duration {
        .nanoseconds(Int64(value.rounded()))
    }
}
