import Detection
import Foundation
import FuzzSupport
import Protocol

/// Fuzzes what the coordinator and the workers decode from the network: the first byte picks a
/// message type, the rest is its JSON body, decoded as the servers do (`HTTPRequest.decode`,
/// `HTTPResponse.decode`); the whole input also goes through request-target splitting and the
/// access policy's header parsing. Decoding may fail with an error, never trap.
@main
enum FuzzRPCMessages {
    static let decoders: [(String, @Sendable (HTTPRequest) -> Void)] = [
        ("RegisterRequest", { _ = try? $0.decode(RegisterRequest.self) }),
        ("HeartbeatRequest", { _ = try? $0.decode(HeartbeatRequest.self) }),
        ("ReportRequest", { _ = try? $0.decode(ReportRequest.self) }),
        ("CheckpointRequest", { _ = try? $0.decode(CheckpointRequest.self) }),
        ("FetchCheckpointRequest", { _ = try? $0.decode(FetchCheckpointRequest.self) }),
        ("ReleaseRequest", { _ = try? $0.decode(ReleaseRequest.self) }),
        ("DeregisterRequest", { _ = try? $0.decode(DeregisterRequest.self) }),
        ("RegisterResponse", { _ = try? HTTPResponse(status: 200, body: $0.body).decode(RegisterResponse.self) }),
        ("HeartbeatResponse", { _ = try? HTTPResponse(status: 200, body: $0.body).decode(HeartbeatResponse.self) }),
        ("FetchCheckpointResponse", { _ = try? HTTPResponse(status: 200, body: $0.body).decode(FetchCheckpointResponse.self) }),
        ("ClusterStatus", { _ = try? HTTPResponse(status: 200, body: $0.body).decode(ClusterStatus.self) }),
        ("StoredAnomalies", { _ = try? HTTPResponse(status: 200, body: $0.body).decode([StoredAnomaly].self) }),
    ]

    static let policy = AccessPolicy(
        clusterToken: try! SecretToken("fuzz-cluster-token-0123456789", source: "fuzz"),
        operatorToken: try! SecretToken("fuzz-operator-token-0123456789", source: "fuzz"), protectReads: true)

    static func main() {
        if CommandLine.arguments.count == 3, CommandLine.arguments[1] == "--write-seeds" {
            writeSeeds(to: CommandLine.arguments[2])
        }
        FuzzMain.run("FuzzRPCMessages") { input in
            guard let selector = input.first else { return }
            let body = Array(input.dropFirst())
            let (_, decode) = decoders[Int(selector) % decoders.count]
            decode(HTTPRequest(method: "POST", path: RPCPath.report, headers: [("content-type", "application/json")], body: body))

            let text = String(decoding: body, as: UTF8.self)
            let (path, query) = RequestTarget.split(text)
            _ = RequestTarget.build(path: path, query: query)
            _ = try? HostAndPort(parsing: text)
            _ = policy.decide(HTTPRequest(method: selector & 1 == 0 ? "GET" : "POST", path: path, headers: [("authorization", text)]))
        }
    }
}

extension FuzzRPCMessages {
    /// Writes one valid JSON message per decoder (selector byte first) as seed inputs, then exits.
    static func writeSeeds(to directory: String) -> Never {
        let anomaly = Anomaly(
            id: Anomaly.makeID(symbol: "BTCUSDT", windowStartMs: 1_700_000_040_000, kind: .priceShock), symbol: "BTCUSDT", kind: .priceShock,
            severity: .high, quality: .medium, windowStartMs: 1_700_000_040_000, windowEndMs: 1_700_000_100_000, detectedAtMs: 1_700_000_110_000,
            value: 0.05, expected: 0.0001, scores: ["z": 9.5], description: "shock", suppressed: false, partition: 3, offset: 42)
        let window = WindowSummary(
            symbol: "BTCUSDT", startMs: 1_700_000_040_000, endMs: 1_700_000_100_000, count: 10, baseVolume: 1, quoteVolume: 60_000, vwap: 60_000,
            open: 60_000, high: 60_100, low: 59_900, close: 60_050, logReturn: 0.001, volatility: 0.002, takerBuyRatio: 0.5, largestTrade: 0.5,
            longestGapMs: 1_000)
        let progress = PartitionProgress(partition: 3, epoch: 2, nextOffset: 1_000, logEndOffset: 1_200, consumed: 1_000, windowed: 990, late: 5, malformed: 5)
        let settings = WorkerSettings(clusterName: "c", kafka: KafkaSettings(brokers: "127.0.0.1:9092"), detection: DetectionConfig(), heartbeatIntervalMs: 1_000, leaseTimeoutMs: 6_000, checkpointIntervalMs: 10_000)
        let encoder = JSONEncoder()
        let messages: [any Encodable] = [
            RegisterRequest(workerID: "w1", address: "host", pid: 42, metricsAddress: "127.0.0.1:9100"),
            HeartbeatRequest(workerID: "w1", partitions: [progress], rssBytes: 1 << 26, cpuSeconds: 1.5),
            ReportRequest(workerID: "w1", partition: 3, epoch: 2, anomalies: [anomaly], windows: [window],
                          lateEvents: [LateEvent(partition: 3, offset: 7, symbol: "BTCUSDT", eventTimeMs: 1, watermarkMs: 2)],
                          malformed: [MalformedRecord(partition: 3, offset: 8, reason: "truncated", excerpt: "{")], lost: [OffsetRange(from: 1, to: 5)]),
            CheckpointRequest(workerID: "w1", partition: 3, epoch: 2, nextOffset: 1_000, state: Data([0x56, 0x47, 0x4C, 0x50, 3, 0]), watermarkMs: 5, durationMs: 1.5),
            FetchCheckpointRequest(workerID: "w1", partition: 3, epoch: 2),
            ReleaseRequest(workerID: "w1", partition: 3, epoch: 2),
            DeregisterRequest(workerID: "w1"),
            RegisterResponse(workerID: "w1", settings: settings),
            HeartbeatResponse(status: .ok, assignments: [Assignment(partition: 3, epoch: 2)]),
            FetchCheckpointResponse(accepted: true, checkpointID: 9, nextOffset: 1_000, state: Data([1, 2, 3])),
            ClusterStatus(clusterName: "c", coordinator: "127.0.0.1:7070", startedAtMs: 1, nowMs: 2, workers: [], partitions: [], anomalyCount: 0, problems: ["x"]),
            [StoredAnomaly(anomaly: anomaly, storedAtMs: 1_700_000_120_000)],
        ]
        precondition(messages.count == decoders.count, "one seed per decoder")
        for (index, message) in messages.enumerated() {
            let json = try! encoder.encode(message)
            FileManager.default.createFile(atPath: "\(directory)/\(decoders[index].0)", contents: Data([UInt8(index)]) + json)
        }
        print("wrote \(messages.count) seeds")
        exit(0)
    }
}
