/// The one source of randomness in detection: SplitMix64 (Steele, Lea and Flood, 2014), a
/// 64-bit generator with a single word of state that passes BigCrush.
///
/// Written out here rather than taken from the standard library because determinism is a
/// promise: `SystemRandomNumberGenerator` is not seedable, and the output of a seeded generator
/// must never change with a toolchain. Every random choice of a model is drawn from a generator
/// seeded by `SeededRandom(symbol:generation:)`, so a replay, a restore or another worker makes
/// exactly the same choices.
struct SeededRandom: RandomNumberGenerator, Equatable, Sendable {
    private(set) var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    /// The generator for `symbol`'s model number `generation`: FNV-1a 64 of the symbol's bytes,
    /// mixed with the generation, so that neighbouring generations start far apart.
    init(symbol: String, generation: UInt64) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in symbol.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        self.init(seed: hash ^ (generation &* 0x9E37_79B9_7F4A_7C15))
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, from the top 53 bits.
    mutating func unit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform in `0 ..< bound` (`bound` > 0), by Lemire's multiply-shift; the bias (at most
    /// `bound / 2^64`) is irrelevant here and the result is the same on every platform.
    mutating func index(below bound: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}
