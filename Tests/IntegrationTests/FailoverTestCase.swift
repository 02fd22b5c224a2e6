import Foundation
import Protocol
import Synchronization
import XCTest

/// Shared machinery of the failover tests: one simulated market (and its `vigil detect` answer)
/// for the whole run, a paced replay so faults land mid-stream, and the checks every failover
/// test ends with (everything processed, exactly the offline anomalies, no stale write accepted).
class FailoverTestCase: ClusterTestCase {
    /// The simulated market every failover test replays, and what `vigil detect` finds in it.
    struct Fixture: Sendable {
        var trades: String
        var lines: Int
        var expected: [String: OfflineAnomaly]
        /// `vigil detect`'s summary counts (`windows_closed`, `late`, ...), from its stderr.
        var offlineTotals: [String: Int]
    }

    private static let cached = Mutex<Fixture?>(nil)
    private static let fixtureDirectory = FileManager.default.temporaryDirectory
        .appendingPathComponent("vigil-it-failover-fixture-\(ProcessInfo.processInfo.processIdentifier)")

    override class func tearDown() {
        cached.withLock { $0 = nil }
        try? FileManager.default.removeItem(at: fixtureDirectory)
        super.tearDown()
    }

    /// Simulates 30 minutes of a 5-symbol market (~110k trades, ~50 anomalies) once per test run and
    /// runs `vigil detect` over it with this test's cluster.conf (its detection settings are the same
    /// in every failover test). Call after `startBrokerAndCoordinator`.
    func fixture() throws -> Fixture {
        if let fixture = Self.cached.withLock({ $0 }) { return fixture }
        try FileManager.default.createDirectory(at: Self.fixtureDirectory, withIntermediateDirectories: true)
        let trades = Self.fixtureDirectory.appendingPathComponent("trades.jsonl").path
        _ = try harness.run("simulate", [
            "simulate", "--out", trades, "--duration", "30m", "--rate", "60", "--seed", "7", "--start-ms", "1700000000000",
        ])
        let lines = try String(contentsOfFile: trades, encoding: .utf8).split(separator: "\n").count
        let out = Self.fixtureDirectory.appendingPathComponent("expected.jsonl").path
        let detect = try harness.start("detect", ["detect", "--input", trades, "--config", configPath, "--partitions", "12", "--out", out])
        guard detect.wait(timeout: .seconds(300)) == 0 else {
            throw HarnessError("vigil detect failed: \(detect.stderr)")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var expected: [String: OfflineAnomaly] = [:]
        for line in try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n") where !line.isEmpty {
            let anomaly = try decoder.decode(OfflineAnomaly.self, from: Data(line.utf8))
            expected[anomaly.id] = anomaly
        }
        var totals: [String: Int] = [:]
        for token in detect.stderr.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let parts = token.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let value = Int(parts[1]) { totals[String(parts[0])] = value }
        }
        let fixture = Fixture(trades: trades, lines: lines, expected: expected, offlineTotals: totals)
        Self.cached.withLock { $0 = fixture }
        return fixture
    }

    /// cluster.conf's lease_timeout in these tests (see ClusterTestCase).
    let leaseTimeout: Duration = .seconds(4)

    // MARK: - Cluster steps

    /// Starts `ids` and waits until they are up and share the 12 partitions evenly (no handoff pending).
    func startWorkers(_ ids: [String]) async throws {
        for id in ids { try startWorker(id) }
        _ = try await awaitStatus("\(ids.count) workers sharing 12 partitions evenly", timeout: .seconds(60)) { s in
            let up = s.workers.filter { $0.state == "up" }
            return up.count == ids.count && s.partitions.allSatisfy { $0.owner != nil }
                && up.allSatisfy { $0.partitions.count == 12 / ids.count }
        }
    }

    /// Replays the fixture paced at 60x (30 minutes of trades in about 30 s), in the background.
    func startPacedReplay(_ fixture: Fixture) throws -> ProcessHarness.Child {
        try harness.start("replay", ["ingest", "replay", fixture.trades, "--brokers", bootstrap, "--topic", "trades", "--speed", "60x"])
    }

    /// Waits until the cluster has processed `fraction` of the fixture: the moment to inject a fault.
    @discardableResult
    func awaitProgress(_ fraction: Double, of fixture: Fixture, replay: ProcessHarness.Child) async throws -> ClusterStatus {
        let target = Int64(Double(fixture.lines) * fraction)
        let replayFailed = { !replay.process.isRunning && replay.process.terminationStatus != 0 }
        let status = try await awaitStatus("\(Int(fraction * 100))% of the trades processed", timeout: .seconds(90)) { s in
            replayFailed() || s.partitions.reduce(0) { $0 + max(0, $1.nextOffset) } >= target
        }
        if replayFailed() {
            throw HarnessError("the replay failed (\(replay.process.terminationStatus)): \(replay.stderr)")
        }
        return status
    }

    /// Waits for the replay to finish producing everything.
    func awaitReplay(_ replay: ProcessHarness.Child, _ fixture: Fixture) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while replay.process.isRunning {
            guard ContinuousClock.now < deadline else { throw HarnessError("the paced replay did not finish within 120 s") }
            try await Task.sleep(for: .milliseconds(200))
        }
        XCTAssertEqual(replay.process.terminationStatus, 0, "replay failed: \(replay.stderr)")
        XCTAssertTrue(replay.stdout.contains("produced \(fixture.lines)"), "replay output: \(replay.stdout)")
    }

    /// Waits until every record of the fixture is in the log and processed: each partition owned by
    /// an up worker, its next offset at its log end, and the log ends adding up to the file. (Summed
    /// `consumed` counters are not used: a replay after a failover counts records again.)
    @discardableResult
    func awaitEverythingProcessed(_ fixture: Fixture, timeout: Duration = .seconds(120)) async throws -> ClusterStatus {
        try await awaitStatus("every record produced and processed", timeout: timeout) { s in
            let up = Set(s.workers.filter { $0.state == "up" }.map(\.id))
            let owned = s.partitions.allSatisfy { $0.owner.map(up.contains) ?? false }
            let logEnds = s.partitions.reduce(0) { $0 + max(0, $1.logEndOffset) }
            let caughtUp = s.partitions.allSatisfy { $0.logEndOffset <= 0 || $0.nextOffset == $0.logEndOffset }
            return owned && caughtUp && logEnds == Int64(fixture.lines)
        }
    }

    /// Freezes `id` past its lease, checks its partitions moved with a new epoch while it was
    /// away, resumes it, and waits until it has rejoined with a share of the partitions.
    func zombieRoundTrip(_ id: String, freeze: () throws -> Void, thaw: () throws -> Void) async throws {
        let before = try await status()
        let owned = try XCTUnwrap(before.workers.first { $0.id == id }).partitions
        let epochs = Dictionary(uniqueKeysWithValues: before.partitions.map { ($0.partition, $0.epoch) })
        try freeze()
        do {
            _ = try await awaitStatus("\(id) declared down and its partitions \(owned) moved", timeout: leaseTimeout + .seconds(20)) { s in
                s.workers.first { $0.id == id }?.state == "down"
                    && owned.allSatisfy { p in s.partitions.first { $0.partition == p }.map { $0.owner != id && $0.owner != nil && $0.epoch > epochs[p]! } ?? false }
            }
        } catch {
            try? thaw()
            throw error
        }
        try thaw()
        _ = try await awaitStatus("\(id) back with a share of the partitions", timeout: .seconds(60)) { s in
            let up = s.workers.filter { $0.state == "up" }
            return up.count == 3 && up.allSatisfy { $0.partitions.count == 4 } && s.partitions.allSatisfy { $0.owner != nil }
        }
    }

    /// The final check of every failover test: exactly the anomalies of `vigil detect`, each once.
    func assertExactlyTheOfflineAnomalies(_ fixture: Fixture, file: StaticString = #filePath, line: UInt = #line) async throws {
        let stored = try await awaitStableAnomalies(expected: fixture.expected.count)
        XCTAssertGreaterThan(fixture.expected.count, 10, "the simulation's injected anomalies must be detected offline", file: file, line: line)
        assertSameAnomalies(stored, fixture.expected, file: file, line: line)
    }

    /// Row counts of the coordinator's database, read with the `sqlite3` tool (nil without it).
    func databaseCounts() throws -> [String: Int]? {
        guard let sqlite = Self.which("sqlite3") else { return nil }
        let database = harness.directory.appendingPathComponent("coordinator.sqlite").path
        var counts: [String: Int] = [:]
        for table in ["anomalies", "windows", "late_events", "malformed_records", "lost_ranges"] {
            let output = try Self.runTool(sqlite, ["-readonly", database, "SELECT COUNT(*) FROM \(table)"])
            guard let count = Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw HarnessError("sqlite3 gave no count for \(table): \(output)")
            }
            counts[table] = count
        }
        return counts
    }

    /// Replays repeat reports: the stored rows must still be exactly one per window, late event and
    /// anomaly of the offline run (nothing doubled, nothing missing).
    func assertNoDuplicateRows(_ fixture: Fixture, file: StaticString = #filePath, line: UInt = #line) throws {
        guard let counts = try databaseCounts() else {
            print("sqlite3 is not installed: row counts not checked (scripts/install-deps.sh --test does not install it either)")
            return
        }
        XCTAssertEqual(counts["anomalies"], fixture.expected.count, "anomaly rows", file: file, line: line)
        if let windows = fixture.offlineTotals["windows_closed"] {
            XCTAssertEqual(counts["windows"], windows, "window rows vs windows closed by vigil detect", file: file, line: line)
        }
        if let late = fixture.offlineTotals["late"] {
            XCTAssertEqual(counts["late_events"], late, "late event rows vs vigil detect", file: file, line: line)
        }
        XCTAssertEqual(counts["malformed_records"], fixture.offlineTotals["malformed"] ?? 0, "malformed rows", file: file, line: line)
        XCTAssertEqual(counts["lost_ranges"], 0, "nothing may be lost to retention in these tests", file: file, line: line)
    }

    // MARK: - Logs

    /// One log line of a `vigil` process, with its `key=value` metadata.
    struct LogLine {
        var text: String
        var fields: [String: String]

        init(_ text: Substring) {
            self.text = String(text)
            var fields: [String: String] = [:]
            for token in text.split(separator: " ") {
                let parts = token.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
            }
            self.fields = fields
        }

        subscript(_ key: String) -> String? { fields[key] }
    }

    /// The lines of `child`'s log that contain `message`, parsed; with `after`, only those logged
    /// after that many bytes (a `logSize` taken earlier).
    func logLines(_ child: ProcessHarness.Child, containing message: String, after: Int = 0) -> [LogLine] {
        let log = Array(child.stderr.utf8)
        return String(decoding: log[min(after, log.count)...], as: UTF8.self).split(separator: "\n")
            .filter { $0.contains(message) }.map(LogLine.init)
    }

    /// How much `child` has logged so far, to look only at what it logs next.
    func logSize(_ child: ProcessHarness.Child) -> Int {
        child.stderr.utf8.count
    }

    /// Asserts that the coordinator (run with debug logs) stored no write of `worker` under an epoch
    /// it had lost: after each "partition moved" away from it, no "report stored" or "checkpoint
    /// stored" of that partition under an older epoch. Returns how many of its writes were rejected.
    @discardableResult
    func assertNoStaleWriteAccepted(from worker: String, coordinators: [ProcessHarness.Child], file: StaticString = #filePath, line: UInt = #line) -> Int {
        var rejected = 0
        var storedWrites = 0
        for coordinator in coordinators {
            var lostEpochs: [String: Int64] = [:]  // partition -> the first epoch `worker` did not own
            for text in coordinator.stderr.split(separator: "\n") {
                let parsed = LogLine(text)
                if text.contains("partition moved"), parsed["from"] == worker, let p = parsed["partition"], let epoch = parsed["epoch"].flatMap(Int64.init) {
                    lostEpochs[p] = min(lostEpochs[p] ?? .max, epoch)
                } else if text.contains("report stored") || text.contains("checkpoint stored"), parsed["worker.id"] == worker,
                          let p = parsed["partition"], let epoch = parsed["epoch"].flatMap(Int64.init) {
                    storedWrites += 1
                    if let lost = lostEpochs[p], epoch < lost {
                        XCTFail("the coordinator accepted a stale write of \(worker) (partition \(p), epoch \(epoch) < \(lost)): \(text)", file: file, line: line)
                    }
                } else if text.contains("rejected "), parsed["worker.id"] == worker {
                    rejected += 1
                }
            }
        }
        XCTAssertGreaterThan(storedWrites, 0, "the coordinator must run with debug logs for this check", file: file, line: line)
        return rejected
    }

    // MARK: - Tools

    static func which(_ tool: String) -> String? {
        for directory in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
            let path = "\(directory)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Runs a system tool to completion; throws with its output when it fails.
    @discardableResult
    static func runTool(_ path: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw HarnessError("\(path) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus): \(text)")
        }
        return text
    }
}
