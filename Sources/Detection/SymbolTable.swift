/// Interns symbols as small dense integer ids (0, 1, 2, ... in first-seen order).
///
/// Lookup hashes the key's inline bytes and compares keys on collision (open addressing,
/// linear probing, load factor at most 1/2), so a known symbol costs no allocation; the
/// `String` name is created once, when a symbol is first interned.
///
/// Ids depend only on the order symbols were interned, which is how `PartitionProcessor` keeps
/// its per-symbol state in arrays and restores it from a snapshot with the same ids.
public struct SymbolTable: Sendable {
    private var keys: [SymbolKey] = []
    /// Names by id.
    public private(set) var names: [String] = []
    /// Slot -> id, or -1 when empty. The count is a power of two.
    private var slots: [Int32] = Array(repeating: -1, count: 16)

    public init() {}

    /// Number of interned symbols; ids are `0..<count`.
    public var count: Int { keys.count }

    /// The id of `key`, or nil when it was never interned.
    @inline(__always)
    public func id(of key: SymbolKey) -> Int? {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: key.mixedHash) & mask
        while true {
            let id = Int(slots[slot])
            if id < 0 { return nil }
            if keys[id] == key { return id }
            slot = (slot + 1) & mask
        }
    }

    /// The id of `key`, interning it (and creating its name) when new.
    @inline(__always)
    public mutating func intern(_ key: SymbolKey) -> Int {
        if let id = id(of: key) { return id }
        return insert(key)
    }

    /// The key of an interned id.
    public func key(_ id: Int) -> SymbolKey { keys[id] }

    /// The name of an interned id.
    public func name(_ id: Int) -> String { names[id] }

    private mutating func insert(_ key: SymbolKey) -> Int {
        let id = keys.count
        keys.append(key)
        names.append(key.string)
        if keys.count * 2 > slots.count {
            rehash(capacity: slots.count * 2)
        } else {
            place(id)
        }
        return id
    }

    private mutating func place(_ id: Int) {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: keys[id].mixedHash) & mask
        while slots[slot] >= 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(id)
    }

    private mutating func rehash(capacity: Int) {
        slots = Array(repeating: -1, count: capacity)
        for id in keys.indices { place(id) }
    }
}
