/// xoshiro256** (Blackman and Vigna, 2018): a small, fast generator with 256 bits of state
/// and a period of 2^256 - 1, good enough for simulation (not for cryptography).
///
/// Seeded through SplitMix64, as its authors recommend, so that any 64-bit seed, including 0,
/// gives a well-mixed state. The same `(seed, stream)` always yields the same sequence on every
/// platform; different `stream` values give independent-looking sequences, which lets each
/// symbol of the simulator draw from its own generator so that one symbol's randomness does
/// not depend on how many trades another symbol made.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// - Parameters:
    ///   - seed: any value; equal seeds give equal sequences.
    ///   - stream: selects an independent sequence for the same seed (e.g. a symbol's index).
    public init(seed: UInt64, stream: UInt64 = 0) {
        var mixer = SplitMix64(state: seed ^ SplitMix64.mix(stream &+ 0x6A09_E667_F3BC_C909))
        s0 = mixer.next()
        s1 = mixer.next()
        s2 = mixer.next()
        s3 = mixer.next()
        // SplitMix64 cannot return four zeros in a row, but keep the all-zero state impossible by construction.
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
    }

    public mutating func next() -> UInt64 {
        let result = rotateLeft(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotateLeft(s3, 45)
        return result
    }

    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

/// SplitMix64 (Steele, Lea and Flood): used only to expand a 64-bit seed into xoshiro's state.
struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
