/// How fast an `Ingestor` hands records to its sink.
public enum Pacing: Sendable, Equatable, CustomStringConvertible {
    /// As fast as the sink accepts them (Kafka's local queue applies backpressure).
    case max
    /// Replays event time `factor` times faster than the wall clock: a record whose trade time
    /// is `d` ms after the first record's is sent `d / factor` ms after the run started. Records
    /// whose time is not after the latest one released go out at once (a file slightly out of
    /// order is not held back). `factor` must be positive.
    case scaled(Double)

    /// Event time tracks the wall clock. For the simulator this yields its configured
    /// `tradesPerSecond` in real time; start it at the current time (`SimulatorConfig.startMs`)
    /// for trade times that match the clock.
    public static let realTime = Pacing.scaled(1)

    public var description: String {
        switch self {
        case .max: "max"
        case .scaled(let factor): factor == 1 ? "real time" : "\(factor)x"
        }
    }
}
