#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes lines to a file through a large buffer, one `write(2)` per buffer-full.
///
/// Creates the file or truncates an existing one. Call `close()` to flush and learn about any
/// error; a writer dropped without `close()` still flushes and closes its file, but errors
/// are lost then. Not thread-safe: one writer per task.
public final class LineFileWriter {
    public let path: String
    private var descriptor: Int32
    private var buffer: [UInt8]
    private let capacity: Int

    /// - Throws: `IngestError` `.cannotOpen` naming the path and the system's reason.
    public init(path: String, bufferSize: Int = 1 << 20) throws(IngestError) {
        self.path = path
        capacity = max(bufferSize, 4_096)
        buffer = []
        buffer.reserveCapacity(capacity)
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw IngestError(.cannotOpen, "\(path): \(systemError(errno)); check the directory exists and is writable")
        }
    }

    /// Lines handed to `writeLine` so far.
    public private(set) var linesWritten = 0
    /// Lines known to be written to the file (the rest are still buffered).
    public private(set) var linesFlushed = 0

    /// Appends `bytes` and a newline.
    public func writeLine(_ bytes: [UInt8]) throws(IngestError) {
        try makeRoom(for: bytes.count + 1)
        buffer.append(contentsOf: bytes)
        endLine()
    }

    /// Appends `bytes` and a newline.
    public func writeLine(_ bytes: UnsafeRawBufferPointer) throws(IngestError) {
        try makeRoom(for: bytes.count + 1)
        buffer.append(contentsOf: bytes)
        endLine()
    }

    private func makeRoom(for count: Int) throws(IngestError) {
        if buffer.count + count > capacity { try flush() }
    }

    private func endLine() {
        buffer.append(UInt8(ascii: "\n"))
        linesWritten += 1
    }

    /// Appends the UTF-8 of `text` and a newline.
    public func writeLine(_ text: String) throws(IngestError) {
        try writeLine(Array(text.utf8))
    }

    /// Writes out everything buffered so far.
    public func flush() throws(IngestError) {
        guard descriptor >= 0 else {
            throw IngestError(.writeFailed, "\(path): the file is already closed")
        }
        var failure: Int32 = 0
        buffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        buffer.removeAll(keepingCapacity: true)
        if failure == 0 { linesFlushed = linesWritten }
        if failure != 0 {
            throw IngestError(.writeFailed, "\(path): \(systemError(failure)); check free disk space and permissions")
        }
    }

    /// Flushes and closes the file; further writes throw.
    public func close() throws(IngestError) {
        guard descriptor >= 0 else { return }
        defer {
            closeDescriptor(descriptor)
            descriptor = -1
        }
        try flush()
    }

    deinit {
        if descriptor >= 0 { try? close() }
    }
}

/// The C library's message for an `errno` value.
func systemError(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// `close(2)`, callable from types that have a `close()` method of their own.
func closeDescriptor(_ descriptor: Int32) {
    _ = close(descriptor)
}
