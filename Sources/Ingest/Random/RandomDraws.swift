#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The draws the simulator needs, on top of a seeded generator.
///
/// Everything is computed from the generator's raw bits with the C math library, so a seed
/// gives the same doubles on every run of the same build (no `SystemRandomNumberGenerator`,
/// no clock).
struct RandomDraws: Sendable {
    private var generator: Xoshiro256StarStar
    /// Box-Muller yields normals in pairs; the second one is kept for the next call.
    private var spareNormal: Double = 0
    private var hasSpareNormal = false

    init(seed: UInt64, stream: UInt64) {
        generator = Xoshiro256StarStar(seed: seed, stream: stream)
    }

    mutating func nextBits() -> UInt64 { generator.next() }

    /// Uniform in `[0, 1)`, with 53 random bits.
    mutating func uniform() -> Double {
        Double(generator.next() >> 11) * 0x1.0p-53
    }

    /// Uniform in `[low, high)`.
    mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * uniform()
    }

    /// Uniform integer in `[0, bound)`; `bound` must be positive. Lemire's multiply-shift,
    /// whose tiny bias (below 2^-40 for the bounds used here) does not matter for a simulator.
    mutating func index(below bound: Int) -> Int {
        precondition(bound > 0, "index(below:) needs a positive bound")
        return Int(generator.next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// True with probability `p`.
    mutating func chance(_ p: Double) -> Bool { uniform() < p }

    /// Exponential with mean 1 (`-log(1 - U)`, finite because `1 - U` is in `(0, 1]`).
    mutating func exponential() -> Double {
        -log(1 - uniform())
    }

    /// Standard normal, by the Box-Muller transform.
    mutating func normal() -> Double {
        if hasSpareNormal {
            hasSpareNormal = false
            return spareNormal
        }
        let radius = (-2 * log(1 - uniform())).squareRoot()
        let angle = 2 * Double.pi * uniform()
        spareNormal = radius * sin(angle)
        hasSpareNormal = true
        return radius * cos(angle)
    }

    /// Fisher-Yates shuffle driven by this generator (the standard library's `shuffle(using:)`
    /// does not promise the same permutation across Swift versions).
    mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) {
            items.swapAt(i, index(below: i + 1))
        }
    }
}
