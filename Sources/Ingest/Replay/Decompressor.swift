import Foundation

/// A compressed replay file read through the system's own tool, `gzip -dc` or `unzip -p`, whose
/// standard output is a pipe that `ReplaySource` reads like a file.
///
/// The tool is found through `PATH` (via `/usr/bin/env`). Its exit status is checked when the
/// output ends: a corrupt archive is a read error naming the tool and what it said, not a
/// silently short replay.
final class Decompressor {
    enum Kind: Equatable {
        case gzip
        case zip

        /// gzip starts with 1f 8b; a zip archive with "PK\u{3}\u{4}".
        init?(magic: [UInt8]) {
            if magic.count >= 2, magic[0] == 0x1F, magic[1] == 0x8B {
                self = .gzip
            } else if magic.count >= 4, magic[0] == 0x50, magic[1] == 0x4B, magic[2] == 0x03, magic[3] == 0x04 {
                self = .zip
            } else {
                return nil
            }
        }

        var command: [String] { self == .gzip ? ["gzip", "-dc"] : ["unzip", "-p"] }
    }

    let kind: Kind
    /// The tool and file, for messages: `gzip -dc /data/x.gz`.
    let commandLine: String
    private let process = Process()
    private let output = Pipe()
    private let errors = Pipe()
    private var finished = false

    /// Starts the tool on `path` (made absolute, so it can never be taken for an option).
    /// - Throws: `IngestError` `.cannotOpen` when the tool cannot be started.
    init(kind: Kind, path: String) throws(IngestError) {
        self.kind = kind
        let absolute = URL(fileURLWithPath: path).path
        let arguments = kind.command + [absolute]
        commandLine = arguments.joined(separator: " ")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw IngestError(.cannotOpen, "\(path): cannot start `\(commandLine)`: \(error); install \(kind.command[0]) or replay an uncompressed file")
        }
    }

    /// The read end of the tool's standard output (owned by this object).
    var descriptor: Int32 { output.fileHandleForReading.fileDescriptor }

    /// Called once the output has ended: waits for the tool and checks that it succeeded.
    /// - Throws: `IngestError` `.readFailed` with the exit status and the tool's message.
    func finish() throws(IngestError) {
        guard !finished else { return }
        finished = true
        process.waitUntilExit()
        let status = process.terminationStatus
        guard process.terminationReason == .exit, status == 0 else {
            let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile().prefix(300), as: UTF8.self)
                .split(whereSeparator: \.isNewline).joined(separator: " ")
            let how = process.terminationReason == .exit ? "exited with status \(status)" : "was killed by signal \(status)"
            throw IngestError(.readFailed, "`\(commandLine)` \(how)\(said.isEmpty ? "" : ": \(said)"); the archive is damaged or not a \(kind == .gzip ? "gzip" : "zip") file")
        }
    }

    /// Stops the tool early (if still running), closes the pipe and reaps it. Idempotent.
    func close() {
        try? output.fileHandleForReading.close()
        if process.isRunning { process.terminate() }
        if !finished {
            finished = true
            process.waitUntilExit()
        }
        try? errors.fileHandleForReading.close()
    }
}
