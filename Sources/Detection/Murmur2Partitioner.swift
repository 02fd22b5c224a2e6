/// Kafka's default key partitioner: the partition a keyed record lands in.
///
/// Identical to the Java client's default partitioner and to librdkafka's `murmur2_random`
/// (for non-null keys): `(murmur2(key) & 0x7fffffff) % partitionCount`, with Kafka's
/// murmur2 variant (seed `0x9747b28c`). `vigil detect` uses it so that a backtest places each
/// symbol in the partition the cluster would read it from.
public enum Murmur2Partitioner {
    /// The partition of `key` among `partitionCount` partitions (`0..<partitionCount`).
    /// A `partitionCount` below 1 is treated as 1 (everything in partition 0).
    public static func partition(key: some Collection<UInt8>, partitionCount: Int32) -> Int32 {
        let positive = UInt32(bitPattern: murmur2(key)) & 0x7fff_ffff
        return Int32(positive % UInt32(max(1, partitionCount)))
    }

    /// Kafka's murmur2 hash (`org.apache.kafka.common.utils.Utils.murmur2`), as a signed value.
    public static func murmur2(_ key: some Collection<UInt8>) -> Int32 {
        let m: UInt32 = 0x5bd1_e995
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: key.count)
        // One pass: bytes gather little-endian into `k`; every fourth byte mixes a block in.
        var k: UInt32 = 0
        var n = 0
        for byte in key {
            k |= UInt32(byte) << (8 * UInt32(n & 3))
            n += 1
            if n & 3 == 0 {
                k &*= m
                k ^= k >> 24
                k &*= m
                h &*= m
                h ^= k
                k = 0
            }
        }
        if n & 3 != 0 {
            // The 1-3 trailing bytes, as Java's fall-through switch combines them.
            h ^= k
            h &*= m
        }
        h ^= h >> 13
        h &*= m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }
}
