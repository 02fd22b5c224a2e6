import Detection
import Foundation
import Protocol
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// What the coordinator acknowledged stays acknowledged: across SIGKILL, and a locked or full
/// database is a clear, retryable error rather than a crash. The test plays the worker over RPC
/// (register, heartbeat, report, checkpoint) against a real coordinator process and its SQLite file.
final class SecurityDurabilityTests: ClusterTestCase {
    private var mountPoint: String?

    override func tearDown() {
        if let mountPoint {
            harness?.shutdown()  // the coordinator's database lives on the mount
            _ = try? Self.shell("umount \(mountPoint) && rmdir \(mountPoint)")
        }
        super.tearDown()
    }

    /// Writes a cluster.conf whose database is `database` and starts the coordinator (no broker:
    /// the coordinator never talks to Kafka).
    private func startCoordinator(database: String) throws {
        configPath = harness.directory.appendingPathComponent("cluster.conf").path
        try """
            [coordinator]
            listen = "127.0.0.1:0"
            database = "\(database)"
            heartbeat_interval = "500ms"
            lease_timeout = "4s"
            [kafka]
            brokers = "127.0.0.1:9"
            partitions = 2
            """.write(toFile: configPath, atomically: true, encoding: .utf8)
        try startCoordinator()
    }

    /// Registers `worker` and heartbeats until it owns a partition; returns that assignment.
    private func joinAndOwn(_ worker: String) async throws -> Assignment {
        let client = try rpc()
        let _: RegisterResponse = try await client.call(RPCPath.register, RegisterRequest(workerID: worker, address: "test", pid: 1))
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let response: HeartbeatResponse = try await client.call(RPCPath.heartbeat, HeartbeatRequest(workerID: worker, partitions: []))
            if let first = response.assignments.min(by: { $0.partition < $1.partition }) { return first }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw HarnessError("\(worker) got no partition within 20 s")
    }

    private func report(_ worker: String, _ assignment: Assignment, windowStartMs: Int64, windows: Int = 1) -> ReportRequest {
        let anomaly = Anomaly(
            id: Anomaly.makeID(symbol: "BTCUSDT", windowStartMs: windowStartMs, kind: .priceShock), symbol: "BTCUSDT", kind: .priceShock,
            severity: .high, quality: .high, windowStartMs: windowStartMs, windowEndMs: windowStartMs + 60_000, detectedAtMs: windowStartMs + 70_000,
            value: 0.05, expected: 0.0001, scores: ["z": 9.5], description: "test shock", suppressed: false, partition: assignment.partition, offset: 42)
        let summaries = (0..<windows).map { i in
            WindowSummary(symbol: "BTCUSDT", startMs: windowStartMs + Int64(i) * 20_000, endMs: windowStartMs + Int64(i) * 20_000 + 60_000, count: 10,
                          baseVolume: 1, quoteVolume: 60_000, vwap: 60_000, open: 60_000, high: 60_100, low: 59_900, close: 60_050,
                          logReturn: 0.001, volatility: 0.002, takerBuyRatio: 0.5, largestTrade: 0.5, longestGapMs: 1_000)
        }
        return ReportRequest(workerID: worker, partition: assignment.partition, epoch: assignment.epoch, anomalies: [anomaly], windows: summaries)
    }

    func testWhatTheCoordinatorAcknowledgedSurvivesSIGKILL() async throws {
        try startCoordinator(database: harness.directory.appendingPathComponent("coordinator.sqlite").path)
        let address = coordinatorAddress
        let owned = try await joinAndOwn("w1")
        let request = report("w1", owned, windowStartMs: 1_700_000_040_000)
        let reported: ReportResponse = try await rpc().call(RPCPath.report, request)
        XCTAssertEqual(reported.accepted, true)
        XCTAssertEqual(reported.inserted, 1)
        let state = Data((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let checkpointed: CheckpointResponse = try await rpc().call(
            RPCPath.checkpoint,
            CheckpointRequest(workerID: "w1", partition: owned.partition, epoch: owned.epoch, nextOffset: 12_345, state: state, watermarkMs: 1_700_000_100_000, durationMs: 1))
        XCTAssertEqual(checkpointed.accepted, true)

        // Killed right after answering: no shutdown, no final flush.
        coordinator.signal(SIGKILL)
        XCTAssertNotNil(coordinator.wait(timeout: .seconds(10)))
        try startCoordinator(listen: address)

        let stored = try await storedAnomalies()
        XCTAssertEqual(stored.map(\.anomaly.id), [request.anomalies[0].id], "the acknowledged anomaly is there after SIGKILL")
        XCTAssertEqual(stored.first?.anomaly.value, 0.05)

        let again = try await joinAndOwn("w1")
        XCTAssertEqual(again.partition, owned.partition)
        let fetched: FetchCheckpointResponse = try await rpc().call(
            RPCPath.fetchCheckpoint, FetchCheckpointRequest(workerID: "w1", partition: again.partition, epoch: again.epoch))
        XCTAssertEqual(fetched.accepted, true)
        XCTAssertEqual(fetched.nextOffset, 12_345, "the acknowledged checkpoint is there after SIGKILL")
        XCTAssertEqual(fetched.state, state)
    }

    func testALockedDatabaseIsAClearRetryableErrorNotACrash() async throws {
        let database = harness.directory.appendingPathComponent("coordinator.sqlite").path
        try startCoordinator(database: database)
        let owned = try await joinAndOwn("w1")

        // Another process (an operator's sqlite3 shell, a backup tool) holds the write lock.
        let lock = try SQLiteLock(path: database)
        let request = report("w1", owned, windowStartMs: 1_700_000_040_000)
        let refused = try await rpc().request(method: "POST", path: RPCPath.report, headers: [("content-type", "application/json")], body: Array(JSONEncoder().encode(request)))
        let message = String(decoding: refused.body, as: UTF8.self)
        XCTAssertEqual(refused.status, 500, message)
        XCTAssertTrue(message.contains("database is locked") && message.contains("can be retried"), message)
        try lock.release()

        // The worker's retry (its outbox resends with backoff) then succeeds; nothing was lost or doubled.
        let retried: ReportResponse = try await rpc().call(RPCPath.report, request)
        XCTAssertEqual(retried.accepted, true)
        XCTAssertEqual(retried.inserted, 1)
        XCTAssertTrue(coordinator.process.isRunning, "the coordinator kept running")
        let stored = try await storedAnomalies()
        XCTAssertEqual(stored.count, 1)
    }

    func testAFullDiskIsAClearRetryableErrorNotACrash() async throws {
        guard getuid() == 0 else {
            throw XCTSkip("needs root to mount a small tmpfs that can fill up (CI runs as root)")
        }
        let mount = harness.directory.appendingPathComponent("small-disk").path
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        do {
            try Self.shell("mount -t tmpfs -o size=6m tmpfs \(mount)")
        } catch {
            throw XCTSkip("cannot mount a tmpfs here (\(error)); a full disk cannot be simulated")
        }
        mountPoint = mount
        try startCoordinator(database: mount + "/coordinator.sqlite")
        let owned = try await joinAndOwn("w1")

        // Fill the volume to the last byte.
        let filler = mount + "/filler"
        _ = try? Self.shell("dd if=/dev/zero of=\(filler) bs=64k 2>/dev/null")
        let request = report("w1", owned, windowStartMs: 1_700_000_040_000, windows: 2_000)
        let refused = try await rpc().request(method: "POST", path: RPCPath.report, headers: [("content-type", "application/json")], body: Array(JSONEncoder().encode(request)))
        let message = String(decoding: refused.body, as: UTF8.self)
        XCTAssertEqual(refused.status, 500, message)
        XCTAssertTrue(message.contains("disk is full") && message.contains("can be retried"), message)
        XCTAssertTrue(coordinator.process.isRunning, "a full disk does not stop the coordinator")

        try FileManager.default.removeItem(atPath: filler)
        let retried: ReportResponse = try await rpc().call(RPCPath.report, request)
        XCTAssertEqual(retried.accepted, true)
        XCTAssertEqual(retried.inserted, 1)
        let stored = try await storedAnomalies()
        XCTAssertEqual(stored.map(\.anomaly.id), [request.anomalies[0].id])
    }

    @discardableResult
    static func shell(_ command: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else { throw HarnessError("`\(command)` failed (\(process.terminationStatus)): \(text)") }
        return text
    }
}

/// An exclusive write lock on an SQLite database, held through the system's libsqlite3 (loaded
/// at run time, so the test target needs no SQLite module), as another process would hold it.
final class SQLiteLock {
    private typealias Open = @convention(c) (UnsafePointer<CChar>, UnsafeMutablePointer<OpaquePointer?>) -> Int32
    private typealias Exec = @convention(c) (OpaquePointer?, UnsafePointer<CChar>, OpaquePointer?, OpaquePointer?, OpaquePointer?) -> Int32
    private typealias Close = @convention(c) (OpaquePointer?) -> Int32

    private let library: UnsafeMutableRawPointer
    private let exec: Exec
    private let close: Close
    private var db: OpaquePointer?
    private var held = false

    init(path: String) throws {
        guard let library = dlopen("libsqlite3.so.0", RTLD_NOW) ?? dlopen("libsqlite3.so", RTLD_NOW),
              let open = dlsym(library, "sqlite3_open"), let exec = dlsym(library, "sqlite3_exec"), let close = dlsym(library, "sqlite3_close")
        else {
            throw HarnessError("cannot load libsqlite3 (install libsqlite3-dev)")
        }
        self.library = library
        self.exec = unsafeBitCast(exec, to: Exec.self)
        self.close = unsafeBitCast(close, to: Close.self)
        guard unsafeBitCast(open, to: Open.self)(path, &db) == 0 else { throw HarnessError("sqlite3_open \(path) failed") }
        guard self.exec(db, "BEGIN EXCLUSIVE", nil, nil, nil) == 0 else { throw HarnessError("BEGIN EXCLUSIVE on \(path) failed") }
        held = true
    }

    func release() throws {
        guard held else { return }
        held = false
        guard exec(db, "COMMIT", nil, nil, nil) == 0 else { throw HarnessError("COMMIT failed") }
    }

    deinit {
        try? release()
        _ = close(db)
        dlclose(library)
    }
}
