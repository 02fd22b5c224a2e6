/// Why a snapshot could not be restored. The message says what happened and what to do.
public struct SnapshotError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable, CaseIterable {
        /// Too short or wrong magic: not a partition snapshot at all.
        case notASnapshot
        /// Written by a newer (or unknown) format version.
        case unsupportedVersion
        /// The bytes were altered after they were written.
        case checksumMismatch
        /// The checksum holds but the content ends early or contradicts itself.
        case corrupt
        /// Taken with different window settings than the configuration restoring it.
        case configMismatch
        /// Taken for another partition.
        case partitionMismatch
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    static func corrupt(_ what: String) -> SnapshotError {
        SnapshotError(.corrupt, "partition snapshot is corrupt (\(what)); discard the checkpoint and replay the partition from its start offset")
    }
}

/// Appends little-endian fixed-width values.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ value: Double) {
        write(value.bitPattern)
    }

    mutating func write(_ value: Bool) {
        write(UInt8(value ? 1 : 0))
    }

    /// A byte string of at most 255 bytes, length-prefixed.
    mutating func writeShortBytes(_ value: [UInt8]) {
        write(UInt8(truncatingIfNeeded: min(value.count, 255)))
        bytes.append(contentsOf: value.prefix(255))
    }

    mutating func writeRaw(_ value: [UInt8]) {
        bytes.append(contentsOf: value)
    }
}

/// Reads what `ByteWriter` wrote; every read is bounds-checked and throws on truncation.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var position: Int
    let end: Int

    init(_ bytes: [UInt8], from start: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        position = start
        self.end = end ?? bytes.count
    }

    var remaining: Int { end - position }

    mutating func read<T: FixedWidthInteger>(_ type: T.Type = T.self) throws(SnapshotError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw SnapshotError.corrupt("ends early at byte \(position)") }
        var value: T = 0
        for i in 0..<size { value |= T(truncatingIfNeeded: bytes[position + i]) << (8 * i) }
        position += size
        return value
    }

    mutating func readDouble() throws(SnapshotError) -> Double {
        Double(bitPattern: try read(UInt64.self))
    }

    mutating func readBool() throws(SnapshotError) -> Bool {
        switch try read(UInt8.self) {
        case 0: return false
        case 1: return true
        default: throw SnapshotError.corrupt("bad boolean at byte \(position - 1)")
        }
    }

    mutating func readShortBytes() throws(SnapshotError) -> [UInt8] {
        let count = Int(try read(UInt8.self))
        guard remaining >= count else { throw SnapshotError.corrupt("ends early at byte \(position)") }
        defer { position += count }
        return Array(bytes[position..<(position + count)])
    }
}

/// FNV-1a 64 over `bytes[range]`: catches storage or transport corruption (not tampering).
func fnv1a64(_ bytes: [UInt8], _ range: Range<Int>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for i in range {
        hash ^= UInt64(bytes[i])
        hash &*= 0x0000_0100_0000_01b3
    }
    return hash
}
