import Foundation
import XCTest

/// Runs real `vigil` processes for integration tests, captures their output to files, and kills
/// whatever is left when the test ends. Output is shown only when a test fails.
final class ProcessHarness {
    final class Child {
        let name: String
        let process: Process
        let stdoutURL: URL
        let stderrURL: URL

        init(name: String, process: Process, stdoutURL: URL, stderrURL: URL) {
            self.name = name
            self.process = process
            self.stdoutURL = stdoutURL
            self.stderrURL = stderrURL
        }

        var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }
        var pid: Int32 { process.processIdentifier }

        func signal(_ signal: Int32) {
            if process.isRunning { kill(process.processIdentifier, signal) }
        }

        /// Waits for the process to exit; returns its status, or nil on timeout.
        func wait(timeout: Duration) -> Int32? {
            let deadline = ContinuousClock.now + timeout
            while process.isRunning {
                if ContinuousClock.now > deadline { return nil }
                usleep(20_000)
            }
            return process.terminationStatus
        }
    }

    let directory: URL
    private(set) var children: [Child] = []

    init(testName: String) throws {
        let safe = testName.filter { $0.isLetter || $0.isNumber }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-it-\(safe)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// The `vigil` executable built next to the test bundle.
    static var vigilPath: String {
        if let path = ProcessInfo.processInfo.environment["VIGIL_BIN"] { return path }
        var url = Bundle.main.bundleURL
        // swift test runs `.build/<triple>/debug/VigilPackageTests.xctest`; vigil is beside it.
        while url.pathComponents.count > 1 {
            let candidate = url.appendingPathComponent("vigil")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
            url.deleteLastPathComponent()
        }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repo.appendingPathComponent(".build/debug/vigil").path
    }

    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func sharedData(_ name: String) -> URL {
        repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data/real/\(name)")
    }

    @discardableResult
    func start(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Child {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.vigilPath)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var env = ProcessInfo.processInfo.environment
        env["VIGIL_LOG_LEVEL"] = env["VIGIL_LOG_LEVEL"] ?? "info"
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = directory.appendingPathComponent("\(name).stdout")
        let err = directory.appendingPathComponent("\(name).stderr")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let child = Child(name: name, process: process, stdoutURL: out, stderrURL: err)
        children.append(child)
        return child
    }

    /// Runs a command to completion and returns its stdout; fails the test on a non-zero exit.
    func run(_ name: String, _ arguments: [String], timeout: Duration = .seconds(120), file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let child = try start(name, arguments)
        guard let status = child.wait(timeout: timeout) else {
            child.signal(SIGKILL)
            XCTFail("\(name) did not finish within \(timeout): \(arguments)\n\(child.stderr)", file: file, line: line)
            return child.stdout
        }
        if status != 0 {
            XCTFail("\(name) exited with \(status): \(arguments)\nstderr:\n\(child.stderr)", file: file, line: line)
        }
        return child.stdout
    }

    /// Waits until the child's stdout has a line starting with `prefix`, and returns the rest of it.
    func awaitLine(_ child: Child, prefix: String, timeout: Duration = .seconds(30)) throws -> String {
        var found: String?
        try poll("\(child.name) to print \(prefix)...", timeout: timeout) {
            found = child.stdout.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
            if found == nil && !child.process.isRunning {
                throw HarnessError("\(child.name) exited (\(child.process.terminationStatus)) before printing \(prefix):\n\(child.stderr)")
            }
            return found != nil
        }
        return found!
    }

    /// Polls `condition` every 200 ms until it holds or the deadline passes; the failure says what was awaited.
    func poll(_ what: String, timeout: Duration, _ condition: () throws -> Bool) throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if try condition() { return }
            if ContinuousClock.now > deadline {
                throw HarnessError("timed out after \(timeout) waiting for \(what)")
            }
            usleep(200_000)
        }
    }

    /// Logs of every child, for a failure message.
    var logs: String {
        children.map { "===== \($0.name) stderr =====\n\($0.stderr.suffix(6000))\n===== \($0.name) stdout =====\n\($0.stdout.suffix(3000))" }
            .joined(separator: "\n")
    }

    func shutdown() {
        for child in children.reversed() { child.signal(SIGTERM) }
        for child in children.reversed() where child.wait(timeout: .seconds(10)) == nil {
            child.signal(SIGKILL)
            _ = child.wait(timeout: .seconds(5))
        }
    }

    func removeFiles() {
        try? FileManager.default.removeItem(at: directory)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
