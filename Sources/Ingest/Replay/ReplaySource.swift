#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Replays a file of trades in file order, reading it in chunks so that files of any size
/// stream in constant memory: JSON lines of Binance trades, or Binance's public-data CSV
/// archives (`trades` and `aggTrades`, see `ReplayFormat`), plain or compressed.
///
/// - Compression is told by the file's first bytes, not its name: gzip is read through
///   `gzip -dc`, zip through `unzip -p` (see `Decompressor`), anything else as is.
/// - The format is told by the first non-blank line: `{` starts JSON lines; otherwise it must be
///   a Binance CSV header or row (`BinanceCSV.detect`), and a header line is skipped.
/// - JSON lines: each non-empty line becomes one record keyed by its `"s"` (symbol) and timed by
///   its `"T"` (trade time, for pacing); the line's bytes pass through unchanged except for a
///   trailing CR. Nothing else about the line is checked (the worker reports trades with bad prices).
/// - CSV: each row becomes the trade JSON the workers parse (`BinanceCSV.encode`), keyed by the
///   file's one symbol: `symbol` if given, else the one in a Binance file name
///   (`BTCUSDT-trades-2024-08-09.zip`).
///
/// Lines that are empty or only blanks are skipped silently. A line that cannot be keyed or
/// timed (JSON without a usable symbol or trade time, a CSV row with wrong fields), or is longer
/// than `maximumLineLength`, is not produced: it is counted in `malformedCount`, and the first
/// 100 are kept in `malformedSamples` with their 1-based line number (in the decompressed text)
/// and the reason. A last line without a newline is still replayed.
///
/// Owns a file descriptor (and a decompressing child process): `close()` it, or let it go
/// (deinit closes it). Not thread-safe.
public final class ReplaySource: TradeSource {
    public let path: String
    public private(set) var symbols: [String] = []
    public private(set) var malformedCount = 0
    public private(set) var malformedSamples: [MalformedLine] = []
    /// Lines read so far, empty and malformed ones included.
    public private(set) var linesRead = 0
    /// Bytes read so far (decompressed, for a compressed file).
    public private(set) var bytesRead = 0
    /// What the file holds, as told from its first line.
    public private(set) var format: ReplayFormat = .jsonLines
    /// The tool reading a compressed file (`gzip -dc FILE`), or nil for a plain file.
    public var decompressionCommand: String? { decompressor?.commandLine }

    /// How many malformed lines are kept as samples.
    public static let sampleLimit = 100

    private var descriptor: Int32
    private var decompressor: Decompressor?
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
    /// CSV: the symbol's bytes, whether a header line is still to be skipped, reusable field ranges.
    private var csvSymbol: [UInt8] = []
    private var csvHeaderPending = false
    private var csvFields: [Range<Int>] = []

    /// Opens `path` for replay and tells its compression and format.
    /// - Parameters:
    ///   - symbol: the symbol of a CSV file (upper-cased); nil to take it from a Binance file
    ///     name. JSON lines carry their own symbols, so it is not used for them.
    ///   - chunkSize: bytes per `read(2)` (1 MiB by default; tests use tiny ones to split lines).
    ///   - maximumLineLength: longer lines are reported as malformed and skipped, so that a file
    ///     without newlines is never loaded whole.
    /// - Throws: `IngestError` `.cannotOpen` naming the path and the system's reason (or the
    ///   decompressor that cannot start); `.unrecognizedInput` when the first line is neither
    ///   JSON nor a Binance CSV layout, or a CSV file's symbol is unknown; `.readFailed`.
    public init(path: String, symbol: String? = nil, chunkSize: Int = 1 << 20, maximumLineLength: Int = 1 << 20) throws(IngestError) {
        precondition(chunkSize > 0 && maximumLineLength > 0, "chunkSize and maximumLineLength must be positive")
        self.path = path
        self.chunkSize = chunkSize
        self.maximumLineLength = maximumLineLength
        buffer = [UInt8](repeating: 0, count: chunkSize)
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw IngestError(.cannotOpen, "\(path): \(systemError(errno)); check the path of the file to replay")
        }
        var magic = [UInt8](repeating: 0, count: 4)
        let magicCount = magic.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress!, 4, 0) }
        if magicCount > 0, let kind = Decompressor.Kind(magic: Array(magic.prefix(magicCount))) {
            closeDescriptor(descriptor)
            let decompressor = try Decompressor(kind: kind, path: path)
            self.decompressor = decompressor
            descriptor = decompressor.descriptor
        }
        do {
            try detectFormat(symbol: symbol)
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Closes the file (and stops a decompressor still running); `next(into:)` then returns false.
    public func close() {
        guard descriptor >= 0 else { return }
        if let decompressor {
            decompressor.close()
        } else {
            closeDescriptor(descriptor)
        }
        descriptor = -1
        atEndOfFile = true
        start = end
    }

    /// Fills `record` with the next usable line and returns true, or returns false at the end of the file.
    /// - Throws: `IngestError` `.readFailed` naming the file and the system's (or the decompressor's) reason.
    public func next(into record: inout IngestRecord) throws(IngestError) -> Bool {
        while let range = try nextLine() {
            linesRead += 1
            var line = range
            if line.upperBound > line.lowerBound, buffer[line.upperBound - 1] == UInt8(ascii: "\r") {
                line = line.lowerBound..<(line.upperBound - 1)
            }
            if isBlank(line) { continue }
            if format == .jsonLines {
                if nextJSON(line, into: &record) { return true }
            } else {
                if csvHeaderPending {
                    csvHeaderPending = false
                    continue
                }
                if nextCSV(line, into: &record) { return true }
            }
        }
        return false
    }

    private func nextJSON(_ line: Range<Int>, into record: inout IngestRecord) -> Bool {
        let extracted = buffer.withUnsafeBufferPointer { bytes in
            TradeFieldExtractor.extract(UnsafeBufferPointer(rebasing: bytes[line]))
        }
        switch extracted {
        case .failure(let failure):
            recordMalformed(lineNumber: linesRead, reason: failure.description, line: line)
            return false
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

    private func nextCSV(_ line: Range<Int>, into record: inout IngestRecord) -> Bool {
        let encoded = buffer.withUnsafeBufferPointer { bytes in
            BinanceCSV.encode(row: UnsafeBufferPointer(rebasing: bytes[line]), format: format, symbol: csvSymbol,
                              fields: &csvFields, into: &record.line)
        }
        switch encoded {
        case .failure(let problem):
            recordMalformed(lineNumber: linesRead, reason: problem.description, line: line)
            return false
        case .success(let (key, timeMs)):
            record.keyRange = key
            record.timeMs = timeMs
            record.lineNumber = linesRead
            record.symbolIndex = 0
            return true
        }
    }

    /// Reads up to the first non-blank line (consuming nothing) and sets `format`, and for CSV
    /// the layout, header and symbol.
    private func detectFormat(symbol: String?) throws(IngestError) {
        guard let first = try peekFirstLine() else { return }  // empty: nothing to replay
        var line = first
        if buffer[line].starts(with: [0xEF, 0xBB, 0xBF]) { line = (line.lowerBound + 3)..<line.upperBound }  // UTF-8 BOM
        while line.lowerBound < line.upperBound, buffer[line.lowerBound] == UInt8(ascii: " ") || buffer[line.lowerBound] == UInt8(ascii: "\t") {
            line = (line.lowerBound + 1)..<line.upperBound
        }
        guard !line.isEmpty, buffer[line.lowerBound] != UInt8(ascii: "{") else { return }
        let detected = buffer.withUnsafeBufferPointer { BinanceCSV.detect(firstLine: UnsafeBufferPointer(rebasing: $0[line])) }
        let layout: BinanceCSV.Layout
        switch detected {
        case .success(let found):
            layout = found
        case .failure(let problem):
            let excerpt = String(decoding: buffer[line].prefix(80), as: UTF8.self)
            throw IngestError(.unrecognizedInput, """
                \(path): the first line "\(excerpt)" is neither a JSON trade object nor a Binance trades/aggTrades \
                CSV row (\(problem)); replay takes JSON lines or Binance public-data CSV (.csv, .zip, .gz)
                """)
        }
        guard let name = symbol?.uppercased() ?? BinanceCSV.symbol(fromFileName: path) else {
            throw IngestError(.unrecognizedInput, """
                \(path): \(layout.format) has no symbol column and the file name does not say it (Binance names \
                files like BTCUSDT-trades-2024-08-09.zip); give the symbol (--symbol BTCUSDT)
                """)
        }
        guard (1...TradeFieldExtractor.maximumSymbolLength).contains(name.utf8.count),
              name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") })
        else {
            throw IngestError(.invalidArgument, "symbol \"\(name)\": expected 1-\(TradeFieldExtractor.maximumSymbolLength) printable ASCII characters without quotes, like BTCUSDT")
        }
        format = layout.format
        csvHeaderPending = layout.hasHeader
        csvSymbol = Array(name.utf8)
        symbols = [name]
    }

    /// The first line that is not blank (without its newline), reading chunks as needed but
    /// consuming nothing: `next(into:)` reads it again. Nil for a file of blank lines.
    private func peekFirstLine() throws(IngestError) -> Range<Int>? {
        var lineStart = 0
        var scanFrom = 0
        while true {
            while let newline = buffer[scanFrom..<end].firstIndex(of: UInt8(ascii: "\n")) {
                var line = lineStart..<newline
                if newline > lineStart, buffer[newline - 1] == UInt8(ascii: "\r") { line = lineStart..<(newline - 1) }
                if !isBlank(line) { return line }
                lineStart = newline + 1
                scanFrom = lineStart
            }
            scanFrom = end
            if atEndOfFile { return isBlank(lineStart..<end) ? nil : lineStart..<end }
            if end - lineStart > maximumLineLength { return lineStart..<end }  // next(into:) reports it
            try readChunk()
        }
    }

    private func isBlank(_ line: Range<Int>) -> Bool {
        buffer[line].allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }
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
                try decompressor?.finish()
                return
            }
            if errno == EINTR { continue }
            throw IngestError(.readFailed, "\(path): \(systemError(errno)) after \(bytesRead) bytes")
        }
    }
}
