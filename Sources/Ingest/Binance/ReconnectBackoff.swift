/// Delays between reconnect attempts: exponential, capped, with jitter. Pure: the caller
/// supplies the random numbers and does the waiting.
///
/// The n-th consecutive failure (n = 1, 2, …) waits a random duration in `[d/2, d]` where
/// `d = min(maximum, initial × multiplier^(n-1))` ("equal jitter"): many clients dropped at
/// once (Binance closes every connection at its 24-hour mark) do not return in lock-step, and
/// none retries sooner than half the nominal delay. `reset()` after a connection that worked
/// starts again from `initial`.
public struct ReconnectBackoff: Sendable, Equatable {
    /// The nominal delay after the first failure.
    public var initial: Duration
    /// The largest nominal delay.
    public var maximum: Duration
    /// Growth factor per consecutive failure (> 1).
    public var multiplier: Double
    /// Consecutive failures since the last `reset()`.
    public private(set) var failures = 0

    /// - Precondition: `initial` > 0, `maximum` >= `initial`, `multiplier` >= 1.
    public init(initial: Duration = .milliseconds(500), maximum: Duration = .seconds(60), multiplier: Double = 2) {
        precondition(initial > .zero && maximum >= initial && multiplier >= 1, "backoff needs 0 < initial <= maximum and multiplier >= 1")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
    }

    /// Counts one more failure and returns how long to wait before the next attempt.
    public mutating func nextDelay<G: RandomNumberGenerator>(using generator: inout G) -> Duration {
        let nominal = nominalDelay(afterFailures: failures + 1)
        failures += 1
        let nanoseconds = Self.nanoseconds(nominal)
        let half = nanoseconds / 2
        return .nanoseconds(half + Int64.random(in: 0...(nanoseconds - half), using: &generator))
    }

    /// The delay before jitter after `count` consecutive failures (`count` >= 1).
    public func nominalDelay(afterFailures count: Int) -> Duration {
        let cap = Double(Self.nanoseconds(maximum))
        var value = Double(Self.nanoseconds(initial))
        var step = 1
        while step < count, value < cap {
            value *= multiplier
            step += 1
        }
        return .nanoseconds(Int64(min(value, cap)))
    }

    /// Forgets past failures: the next delay is `initial` again (with jitter).
    public mutating func reset() {
        failures = 0
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
