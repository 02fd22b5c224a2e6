#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Replays a JSON-lines file of Binance trades (one `{"e":"trade",…}` object per line), in file
/// order, reading it in chunks so that files of any size stream in constant memory.
///
/// Each non-empty line becomes one record keyed by its `"s"` (symbol) and timed by its `"T"`
/// (trade time, for pacing); the line's bytes pass through unchanged except for a trailing CR.
/// Lines that are empty or only blanks are skipped silently. A line without a usable symbol or
/// trade time, or longer than `maximumLineLength`, cannot be keyed, so it is not produced: it is
/// counted in `malformedCount`, and the first 100 are kept in `malformedSamples` with their
/// 1-based line number and the reason. Nothing else about the line is checked (the worker
/// reports trades with bad prices). A last line without a newline is still replayed.
///
/// Owns a file descriptor: `close()` it, or let it go (deinit closes it). Not thread-safe.
public final class ReplaySource: TradeSource {
    public let path: String
    public private(set) var symbols: [String] = []
    public private(set) var malformedCount = 0
    public private(set) var malformedSamples: [MalformedLine] = []
    /// Lines read so far, empty and malformed ones included.
    public private(set) var linesRead = 0
    /// Bytes read from the file so far.
    public private(set) var bytesRead = 0

    /// How many malformed lines are kept as samples.
    public static let sampleLimit = 100

    private var descriptor: Int32
    private let chunkSize: Int
    private let maximumLineLength: Int
    /// `buffer[start..<end]` holds unread bytes; `[start..<scanned]` is known to have no newline.
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var scanned = 0
    private var atEndOfFile = false
    /// True while discarding the rest of a line already reported as too long.
    private var skippingLongLine = false
    private var interner = KeyInterner()

    /// Opens `path` for replay.
    /// - Parameters:
    ///   - chunkSize: bytes per `read(2)` (1 MiB by default; tests use tiny ones to split lines).
    ///   - maximumLineLength: longer lines are reported as malformed and skipped, so that a file
    ///     without newlines is never loaded whole.
    /// - Throws: `IngestError` `.cannotOpen` naming the path and the system's reason.
    public init(path: String, chunkSize: Int = 1 << 20, maximumLineLength: Int = 1 << 20) throws(IngestError) {
        precondition(chunkSize > 0 && maximumLineLength > 0, "chunkSize and maximumLineLength must be positive")
        self.path = path
        self.chunkSize = chunkSize
        self.maximumLineLength = maximumLineLength
        buffer = [UInt8](repeating: 0, count: chunkSize)
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw IngestError(.cannotOpen, "\(path): \(systemError(errno)); check the path of the file to replay")
        }
    }

    deinit { close() }

    /// Closes the file; `next(into:)` then returns false.
    public func close() {
        guard descriptor >= 0 else { return }
        closeDescriptor(descriptor)
        descriptor = -1
        atEndOfFile = true
        start = end
    }

    /// Fills `record` with the next keyable line and returns true, or returns false at the end of the file.
    /// - Throws: `IngestError` `.readFailed` naming the file and the system's reason.
    public func next(into record: inout IngestRecord) throws(IngestError) -> Bool {
        while let range = try nextLine() {
            linesRead += 1
            var line = range
            if line.upperBound > line.lowerBound, buffer[line.upperBound - 1] == UInt8(ascii: "\r") {
                line = line.lowerBound..<(line.upperBound - 1)
            }
            if buffer[line].allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
            let extracted = buffer.withUnsafeBufferPointer { bytes in
                TradeFieldExtractor.extract(UnsafeBufferPointer(rebasing: bytes[line]))
            }
            switch extracted {
            case .failure(let failure):
                recordMalformed(lineNumber: linesRead, reason: failure.description, line: line)
            case .success(let fields):
                record.line.removeAll(keepingCapacity: true)
                record.line.append(contentsOf: buffer[line])
                record.keyRange = fields.symbol
                record.timeMs = fields.timeMs
                record.lineNumber = linesRead
                record.symbolIndex = record.line.withUnsafeBufferPointer { bytes in
                    let (id, isNew) = interner.intern(UnsafeBufferPointer(rebasing: bytes[fields.symbol]))
                    if isNew { symbols.append(String(decoding: bytes[fields.symbol], as: UTF8.self)) }
                    return id
                }
                return true
            }
        }
        return false
    }

    private func recordMalformed(lineNumber: Int, reason: String, line: Range<Int>) {
        malformedCount += 1
        guard malformedSamples.count < Self.sampleLimit else { return }
        let excerpt = String(decoding: buffer[line.lowerBound..<min(line.upperBound, line.lowerBound + 120)], as: UTF8.self)
        malformedSamples.append(MalformedLine(lineNumber: lineNumber, reason: reason, excerpt: excerpt))
    }

    /// The next line's range in `buffer` (without its newline), reading more of the file as needed.
    private func nextLine() throws(IngestError) -> Range<Int>? {
        while true {
            if let newline = findNewline() {
                let line = start..<newline
                start = newline + 1
                scanned = start
                if skippingLongLine {
                    skippingLongLine = false
                    continue
                }
                return line
            }
            if atEndOfFile {
                guard start < end, !skippingLongLine else {
                    start = end
                    return nil
                }
                if end - start > maximumLineLength {
                    linesRead += 1
                    recordMalformed(lineNumber: linesRead, reason: "line longer than \(maximumLineLength) bytes", line: start..<end)
                    start = end
                    return nil
                }
                let line = start..<end
                start = end
                scanned = end
                return line
            }
            if skippingLongLine {
                start = end
                scanned = end
            } else if end - start > maximumLineLength {
                linesRead += 1
                recordMalformed(lineNumber: linesRead, reason: "line longer than \(maximumLineLength) bytes", line: start..<end)
                skippingLongLine = true
                start = end
                scanned = end
            }
            try readChunk()
        }
    }

    private func findNewline() -> Int? {
        guard scanned < end else { return nil }
        let found: Int? = buffer.withUnsafeBufferPointer { bytes in
            guard let hit = memchr(bytes.baseAddress! + scanned, Int32(UInt8(ascii: "\n")), end - scanned) else { return nil }
            return UnsafeRawPointer(hit) - UnsafeRawPointer(bytes.baseAddress!)
        }
        if found == nil { scanned = end }
        return found
    }

    /// Moves unread bytes to the front, makes room for a chunk, and reads one.
    private func readChunk() throws(IngestError) {
        if start > 0 {
            let unread = end - start
            if unread > 0 {
                buffer.withUnsafeMutableBufferPointer { bytes in
                    let base = bytes.baseAddress!
                    base.update(from: base + start, count: unread)
                }
            }
            scanned -= start
            end = unread
            start = 0
        }
        if buffer.count < end + chunkSize {
            buffer.append(contentsOf: repeatElement(0, count: end + chunkSize - buffer.count))
        }
        while true {
            let count = buffer.withUnsafeMutableBufferPointer { bytes in
                read(descriptor, bytes.baseAddress! + end, chunkSize)
            }
            if count > 0 {
                end += count
                bytesRead += count
                return
            }
            if count == 0 {
                atEndOfFile = true
                return
            }
            if errno == EINTR { continue }
            throw IngestError(.readFailed, "\(path): \(systemError(errno)) after \(bytesRead) bytes")
        }
    }
}
