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

/// A client for one command invocation: connects (with TLS and a token when `security` says so),
/// and turns "unreachable" into one clear line.
func withCoordinator<T>(_ address: String, security: ClientSecurity = .none, _ body: (RPCClient) async throws -> T) async throws -> T {
    var logger = Logger(label: "vigil.client")
    logger.logLevel = .error
    let client = try RPCClient(address: address, logger: logger, tls: security.tls, token: security.token)
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
        discussion: """
            Exits with status 2 when the cluster has problems (unowned partitions, suspect workers, stalled \
            watermarks, overdue checkpoints, offsets lost to retention), so scripts can use it. See \
            docs/operator.md for every column.
            """)

    @OptionGroup var target: CoordinatorAddressOptions
    @Flag(name: .long, help: "Print the status as JSON.") var json = false
    @Flag(name: .long, help: "Refresh every second until interrupted.") var watch = false

    func run() async throws {
        let address = try target.address()
        let security = try target.clientSecurity()
        repeat {
            let status: ClusterStatus
            do {
                status = try await withCoordinator(address, security: security) { try await $0.get(RPCPath.status) }
            } catch where watch {
                // Watching through a coordinator restart: say so, and keep trying.
                print("\u{1B}[2J\u{1B}[H\(isoTime(ms: wallClockMs()))  \(error)")
                try await Task.sleep(for: .seconds(1))
                continue
            }
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

/// Renders `/v1/status` for a terminal: a header, WORKERS, PARTITIONS, recent ANOMALIES and
/// PROBLEMS. Ages are relative to the coordinator's clock (`nowMs`); "-" means unknown (not
/// reported yet, or from an older coordinator).
enum StatusRenderer {
    static func render(_ s: ClusterStatus) -> String {
        let up = s.workers.filter { $0.state == "up" }.count
        let suspect = s.workers.filter { $0.state == "suspect" }.count
        let down = s.workers.filter { $0.state == "down" }.count
        let leaving = s.workers.filter { $0.state == "leaving" }.count
        let maxEpoch = s.partitions.map(\.epoch).max() ?? 0
        var out = "cluster \(s.clusterName) at \(s.coordinator), up \(relativeDuration(ms: s.nowMs - s.startedAtMs)); "
        out += "workers \(up) up, \(suspect) suspect, \(leaving > 0 ? "\(leaving) leaving, " : "")\(down) down; epoch \(maxEpoch); anomalies \(s.anomalyCount) stored\n\n"
        out += "WORKERS\n"
        out += renderTable(
            ["ID", "ADDRESS", "STATE", "AGE", "HEARTBEAT", "RESTARTS", "PARTITIONS", "SYMBOLS", "IN/S", "PROC/S", "LAG", "LAG(S)",
             "WM AGE", "CHECKPOINT", "CPU", "RSS", "METRICS"],
            s.workers.map { w in
                [
                    w.id, w.address, w.state, relativeDuration(ms: s.nowMs - w.registeredAtMs),
                    relativeAge(ms: s.nowMs - w.lastHeartbeatMs), w.restarts.map(String.init) ?? "-", compactList(w.partitions),
                    w.symbols.map(String.init) ?? "-", rate(w.inPerSecond), rate(w.processedPerSecond ?? w.recordsPerSecond),
                    w.lag.map(String.init) ?? "-", seconds(w.lagSeconds), w.watermarkAgeMs.map { relativeDuration(ms: $0) } ?? "-",
                    w.checkpointAgeMs.map { relativeAge(ms: $0) } ?? "-",
                    w.cpuPercent.map { String(format: "%.0f%%", $0) } ?? String(format: "%.1fs", w.cpuSeconds),
                    "\(w.rssBytes / 1_048_576)MB", w.metricsAddress ?? "-",
                ]
            })
        out += "\n\nPARTITIONS\n"
        out += renderTable(
            ["PARTITION", "OWNER", "EPOCH", "OFFSET", "COMMITTED", "END", "LAG", "IN/S", "WATERMARK", "LATE(5M)", "CHECKPOINT", "LOST"],
            s.partitions.map { p in
                [
                    "\(p.partition)", p.owner ?? "-", "\(p.epoch)", p.nextOffset < 0 ? "-" : "\(p.nextOffset)",
                    p.committedOffset.map(String.init) ?? "-", p.logEndOffset < 0 ? "-" : "\(p.logEndOffset)",
                    p.lag < 0 ? "-" : "\(p.lag)", rate(p.inPerSecond),
                    p.watermarkMs == .min ? "-" : relativeAge(ms: s.nowMs - p.watermarkMs),
                    p.lateRecent.map(String.init) ?? "-", checkpointCell(p),
                    p.lost.isEmpty ? "-" : "\(p.lost.reduce(Int64(0)) { $0 + $1.to - $1.from })",
                ]
            })
        if let recent = s.recentAnomalies {
            out += "\n\nANOMALIES (last \(relativeDuration(ms: recent.windowMs)))\n"
            out += digest(recent)
        }
        out += "\n\nPROBLEMS\n"
        out += s.problems.isEmpty ? "none" : s.problems.map { "- \($0)" }.joined(separator: "\n")
        return out
    }

    /// "2 critical, 5 high, 1 medium; 3 suppressed; top BTCUSDT 4, ETHUSDT 2".
    static func digest(_ d: AnomalyDigest) -> String {
        let bySeverity = Severity.allCases.reversed().compactMap { severity in
            d.bySeverity[severity.rawValue].map { "\($0) \(severity.rawValue)" }
        }
        var text = bySeverity.isEmpty ? "none" : bySeverity.joined(separator: ", ")
        if d.suppressed > 0 { text += "; \(d.suppressed) suppressed (cooldown)" }
        if !d.topSymbols.isEmpty {
            text += "; top " + d.topSymbols.map { "\($0.symbol) \($0.count)" }.joined(separator: ", ")
        }
        return text
    }

    /// "#12 e3 4s ago 1.2ms 48KB": the latest checkpoint's id, the epoch it was taken under, its
    /// age, how long the snapshot took, and its size.
    static func checkpointCell(_ p: PartitionStatus) -> String {
        guard let id = p.checkpointID else { return p.checkpointAgeMs.map { relativeAge(ms: $0) } ?? "-" }
        var parts = ["#\(id)"]
        if let epoch = p.checkpointEpoch { parts.append("e\(epoch)") }
        if let age = p.checkpointAgeMs { parts.append(relativeAge(ms: age)) }
        if let ms = p.checkpointDurationMs { parts.append(String(format: "%.1fms", ms)) }
        if let bytes = p.checkpointBytes { parts.append(bytes >= 10_240 ? "\(bytes / 1_024)KB" : "\(bytes)B") }
        return parts.joined(separator: " ")
    }

    static func compactList(_ partitions: [Int32]) -> String {
        partitions.isEmpty ? "-" : partitions.sorted().map(String.init).joined(separator: ",")
    }

    static func rate(_ value: Double?) -> String {
        guard let value else { return "-" }
        return value >= 100 ? String(format: "%.0f", value) : String(format: "%.1f", value)
    }

    static func seconds(_ value: Double?) -> String {
        guard let value else { return "-" }
        return value >= 100 ? String(format: "%.0fs", value) : String(format: "%.1fs", value)
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
        let stored: [StoredAnomaly] = try await withCoordinator(try target.address(), security: try target.clientSecurity()) {
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
        let path = "\(RPCPath.anomalies)/\(RequestTarget.percentEncode(id))/ack?by=\(who.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "operator")"
        let response = try await withCoordinator(try target.address(), security: try target.clientSecurity()) {
            try await $0.request(method: "POST", path: path)
        }
        guard (200..<300).contains(response.status) else {
            throw CLIError(String(decoding: response.body, as: UTF8.self))
        }
        let ack = try response.decode(AckResponse.self)
        print("acknowledged \(ack.id) by \(ack.acknowledgedBy ?? who)")
    }
}
