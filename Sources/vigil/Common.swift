import ArgumentParser
import Foundation
import Logging

/// Options every long-running command shares.
struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical. Also VIGIL_LOG_LEVEL.")
    var logLevel: String?

    func bootstrap(label: String) -> Logger {
        let text = logLevel ?? ProcessInfo.processInfo.environment["VIGIL_LOG_LEVEL"] ?? "info"
        let level = Logger.Level(rawValue: text.lowercased()) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}

/// `--config`, defaulting to ./cluster.conf when present.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Path of cluster.conf (TOML). Default: ./cluster.conf when present.")
    var config: String?

    func load() throws -> ClusterConfig {
        do {
            return try ClusterConfigLoader.load(path: config ?? "cluster.conf", required: config != nil)
        } catch let error as ConfigError {
            throw ValidationError(error.description)
        }
    }
}

/// `--coordinator HOST:PORT` for client commands; defaults to cluster.conf's coordinator.listen.
struct CoordinatorAddressOptions: ParsableArguments {
    @Option(name: .long, help: "Coordinator address HOST:PORT. Default: coordinator.listen from cluster.conf, else 127.0.0.1:7070.")
    var coordinator: String?

    @OptionGroup var config: ConfigOptions
    @OptionGroup var security: SecurityOptions

    func address() throws -> String {
        if let coordinator { return coordinator }
        if let env = ProcessInfo.processInfo.environment["VIGIL_COORDINATOR"] { return env }
        return try config.load().listen
    }

    /// TLS and the operator token from [security] of cluster.conf, `VIGIL_OPERATOR_TOKEN` and the flags.
    func clientSecurity() throws -> ClientSecurity {
        try security.client(config.load().security, role: .operator)
    }
}

/// "HOST:PORT" → parts, with an error that says what was expected.
func splitHostPort(_ text: String, flag: String) throws -> (host: String, port: Int) {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
        throw ValidationError("\(flag): expected HOST:PORT (e.g. 127.0.0.1:7070), got \"\(text)\"")
    }
    var host = String(text[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    return (host.isEmpty ? "0.0.0.0" : host, port)
}

/// Milliseconds since the Unix epoch, from the wall clock (shell code only).
func wallClockMs() -> Int64 {
    Int64((Date().timeIntervalSince1970 * 1000).rounded())
}

/// "8s ago", "3m ago", "2h ago".
func relativeAge(ms: Int64) -> String {
    if ms < 0 { return "in \(relativeDuration(ms: -ms))" }
    return "\(relativeDuration(ms: ms)) ago"
}

func relativeDuration(ms: Int64) -> String {
    switch ms {
    case ..<1_000: return "\(ms)ms"
    case ..<60_000: return "\(ms / 1_000)s"
    case ..<3_600_000: return "\(ms / 60_000)m\((ms % 60_000) / 1_000)s"
    default: return "\(ms / 3_600_000)h\((ms % 3_600_000) / 60_000)m"
    }
}

/// Renders rows as aligned columns.
func renderTable(_ header: [String], _ rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for row in rows {
        for (i, cell) in row.enumerated() where i < widths.count {
            widths[i] = max(widths[i], cell.count)
        }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, cell in
            i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}

/// Writes a line to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A failure of a command, printed by ArgumentParser as one line ("Error: ...") with exit code 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Flushes stdout, so a line like `bootstrap=...` reaches a pipe at once.
func flushStandardOutput() {
    fflush(nil)
}
