import ArgumentParser
import Detection
import Foundation
import Logging
import Protocol

/// JSON as the CLI prints it: snake_case keys, sorted, so scripts and `vigil detect --out` agree.
func cliJSONEncoder(pretty: Bool = false) -> JSONEncoder {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
    return encoder
}

/// The flat JSON form of an anomaly printed by `vigil anomalies --json` and `vigil detect --out`.
struct AnomalyRecord: Codable {
    var id: String
    var symbol: String
    var kind: String
    var severity: String
    var quality: String
    var windowStartMs: Int64
    var windowEndMs: Int64
    var detectedAtMs: Int64
    var value: Double
    var expected: Double
    var scores: [String: Double]
    var description: String
    var suppressed: Bool
    var partition: Int32
    var offset: Int64
    var acknowledged: Bool?
    var acknowledgedBy: String?

    init(_ a: Anomaly, stored: StoredAnomaly? = nil) {
        id = a.id
        symbol = a.symbol
        kind = a.kind.rawValue
        severity = a.severity.rawValue
        quality = a.quality.rawValue
        windowStartMs = a.windowStartMs
        windowEndMs = a.windowEndMs
        detectedAtMs = a.detectedAtMs
        value = a.value
        expected = a.expected
        scores = a.scores
        description = a.description
        suppressed = a.suppressed
        partition = a.partition
        offset = a.offset
        acknowledged = stored?.acknowledged
        acknowledgedBy = stored?.acknowledgedBy
    }
}

/// A client for one command invocation: connects, and turns "unreachable" into one clear line.
func withCoordinator<T>(_ address: String, _ body: (RPCClient) async throws -> T) async throws -> T {
    var logger = Logger(label: "vigil.client")
    logger.logLevel = .error
    let client = try RPCClient(address: address, logger: logger)
    do {
        let result = try await body(client)
        await client.close()
        return result
    } catch let error as RPCError {
        await client.close()
        throw CLIError("coordinator \(address): \(error)")
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show workers, partitions and problems of a running cluster.",
        discussion: "Exits with status 2 when the cluster has problems (unowned partitions, lost offsets, workers down), so scripts can use it.")

    @OptionGroup var target: CoordinatorAddressOptions
    @Flag(name: .long, help: "Print the status as JSON.") var json = false
    @Flag(name: .long, help: "Refresh every second until interrupted.") var watch = false

    func run() async throws {
        let address = try target.address()
        repeat {
            let status: ClusterStatus = try await withCoordinator(address) { try await $0.get(RPCPath.status) }
            if json {
                let data = try cliJSONEncoder(pretty: true).encode(status)
                print(String(decoding: data, as: UTF8.self))
            } else {
                if watch { print("\u{1B}[2J\u{1B}[H", terminator: "") }
                print(StatusRenderer.render(status))
            }
            if watch { try await Task.sleep(for: .seconds(1)) } else if !status.problems.isEmpty {
                throw ExitCode(2)
            }
        } while watch
    }
}

enum StatusRenderer {
    static func render(_ s: ClusterStatus) -> String {
        let up = s.workers.filter { $0.state == "up" }.count
        let suspect = s.workers.filter { $0.state == "suspect" }.count
        let down = s.workers.filter { $0.state == "down" }.count
        let maxEpoch = s.partitions.map(\.epoch).max() ?? 0
        var out = "cluster \(s.clusterName) at \(s.coordinator), up \(relativeDuration(ms: s.nowMs - s.startedAtMs)); "
        out += "workers \(up) up, \(suspect) suspect, \(down) down; epoch \(maxEpoch); anomalies \(s.anomalyCount)\n\n"
        out += "WORKERS\n"
        out += renderTable(
            ["ID", "ADDRESS", "STATE", "AGE", "HEARTBEAT", "PARTITIONS", "IN/S", "RSS", "CPU"],
            s.workers.map { w in
                [
                    w.id, w.address, w.state, relativeDuration(ms: s.nowMs - w.registeredAtMs),
                    relativeAge(ms: s.nowMs - w.lastHeartbeatMs), compactList(w.partitions),
                    String(format: "%.0f", w.recordsPerSecond), "\(w.rssBytes / 1_048_576)MB",
                    String(format: "%.1fs", w.cpuSeconds),
                ]
            })
        out += "\n\nPARTITIONS\n"
        out += renderTable(
            ["PARTITION", "OWNER", "EPOCH", "OFFSET", "END", "LAG", "CONSUMED", "LATE", "MALFORMED", "WATERMARK"],
            s.partitions.map { p in
                [
                    "\(p.partition)", p.owner ?? "-", "\(p.epoch)", p.nextOffset < 0 ? "-" : "\(p.nextOffset)",
                    p.logEndOffset < 0 ? "-" : "\(p.logEndOffset)", p.lag < 0 ? "-" : "\(p.lag)",
                    "\(p.consumed)", "\(p.late)", "\(p.malformed)",
                    p.watermarkMs == .min ? "-" : isoTime(ms: p.watermarkMs),
                ]
            })
        out += "\n\nPROBLEMS\n"
        out += s.problems.isEmpty ? "none" : s.problems.map { "- \($0)" }.joined(separator: "\n")
        return out
    }

    static func compactList(_ partitions: [Int32]) -> String {
        partitions.isEmpty ? "-" : partitions.sorted().map(String.init).joined(separator: ",")
    }
}

func isoTime(ms: Int64) -> String {
    let date = Date(timeIntervalSince1970: Double(ms) / 1000)
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.string(from: date)
}

struct AnomaliesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "anomalies", abstract: "List stored anomalies, newest first.")

    @OptionGroup var target: CoordinatorAddressOptions
    @Flag(name: .long, help: "Print one JSON object per line.") var json = false
    @Option(name: .long, help: "Only this symbol.") var symbol: String?
    @Option(name: .long, help: "Only this kind (e.g. price_shock).") var kind: String?
    @Option(name: .long, help: "Minimum severity: low, medium, high, critical.") var severity: String?
    @Option(name: .long, help: "At most this many.") var limit: Int = 1000

    func run() async throws {
        var query = ["limit": String(limit)]
        if let symbol { query["symbol"] = symbol.uppercased() }
        if let kind { query["kind"] = kind }
        if let severity { query["severity"] = severity }
        let stored: [StoredAnomaly] = try await withCoordinator(try target.address()) {
            try await $0.get(RPCPath.anomalies, query: query)
        }
        if json {
            let encoder = cliJSONEncoder()
            for item in stored {
                print(String(decoding: try encoder.encode(AnomalyRecord(item.anomaly, stored: item)), as: UTF8.self))
            }
            return
        }
        print(renderTable(
            ["ID", "SYMBOL", "KIND", "SEVERITY", "QUALITY", "WINDOW", "ACK", "DESCRIPTION"],
            stored.map { s in
                let a = s.anomaly
                return [a.id, a.symbol, a.kind.rawValue, a.severity.rawValue + (a.suppressed ? " (suppressed)" : ""),
                        a.quality.rawValue, isoTime(ms: a.windowStartMs), s.acknowledged ? (s.acknowledgedBy ?? "yes") : "-",
                        a.description]
            }))
    }
}

struct AckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ack", abstract: "Acknowledge an anomaly.")

    @OptionGroup var target: CoordinatorAddressOptions
    @Argument(help: "Anomaly id (from `vigil anomalies`).") var id: String
    @Option(name: .long, help: "Who acknowledges it. Default: $USER.") var by: String?

    func run() async throws {
        let who = by ?? ProcessInfo.processInfo.environment["USER"] ?? "operator"
        let path = "\(RPCPath.anomalies)/\(id)/ack?by=\(who.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "operator")"
        let response = try await withCoordinator(try target.address()) {
            try await $0.request(method: "POST", path: path)
        }
        guard (200..<300).contains(response.status) else {
            throw CLIError(String(decoding: response.body, as: UTF8.self))
        }
        let ack = try response.decode(AckResponse.self)
        print("acknowledged \(ack.id) by \(ack.acknowledgedBy ?? who)")
    }
}
