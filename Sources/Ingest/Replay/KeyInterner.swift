/// Gives each distinct byte string (a symbol) a dense id, 0, 1, 2… in first-seen order.
///
/// Open addressing with linear probing on an FNV-1a hash, load factor at most 1/2; looking up a
/// known key allocates nothing, so a replay can map every line's symbol to its counter cheaply.
struct KeyInterner: Sendable {
    private var keys: [[UInt8]] = []
    private var hashes: [UInt64] = []
    /// Slot → id, or -1 when empty; the count is a power of two.
    private var slots = [Int32](repeating: -1, count: 32)

    var count: Int { keys.count }

    /// The id of `key`, and whether it was seen for the first time.
    mutating func intern(_ key: UnsafeBufferPointer<UInt8>) -> (id: Int, isNew: Bool) {
        let hash = Self.hash(key)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] >= 0 {
            let id = Int(slots[slot])
            if hashes[id] == hash, keys[id].elementsEqual(key) { return (id, false) }
            slot = (slot + 1) & mask
        }
        let id = keys.count
        keys.append(Array(key))
        hashes.append(hash)
        if keys.count * 2 > slots.count {
            slots = [Int32](repeating: -1, count: slots.count * 2)
            for existing in keys.indices { place(existing) }
        } else {
            slots[slot] = Int32(id)
        }
        return (id, true)
    }

    private mutating func place(_ id: Int) {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hashes[id]) & mask
        while slots[slot] >= 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(id)
    }

    private static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        // FNV's low bits mix poorly for short keys; fold the high half in before masking.
        return hash ^ (hash >> 32)
    }
}
