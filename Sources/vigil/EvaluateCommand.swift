import ArgumentParser
import Detection
import Foundation

struct EvaluateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score detected anomalies against labelled ones: recall, precision and delay per kind.",
        discussion: """
            --anomalies is what `vigil detect --out` (or `vigil anomalies --json`) writes; --labels what \
            `vigil simulate --labels` writes. Only alerts count: suppressed repeats are neither hits nor \
            false alarms. A label is hit by an alert on its symbol whose window overlaps it and whose kind \
            is related (a price_shock detects a flash_crash, a volume_spike a pump_and_dump, ...; the \
            "exact" column counts alerts of the label's own kind). Precision is the share of alerts that \
            overlap any label of their symbol. Delay runs from the label's start to the alert's \
            detected_at_ms (event time). With an empty labels file every alert is a false alarm; give \
            --symbol-hours to get their rate. See docs/detection.md.
            """)

    @Option(name: .long, help: "Anomalies as JSON lines (snake_case, as `vigil detect --out` writes them).") var anomalies: String
    @Option(name: .long, help: "Labels as JSON lines: {symbol, kind, start_ms, end_ms}.") var labels: String
    @Option(name: .long, help: "Symbol-hours of trading the anomalies cover, to print false alarms per symbol-hour.") var symbolHours: Double?
    @Flag(name: .long, help: "List every false alarm and missed label.") var verbose = false

    private struct AnomalyLine: Decodable {
        var symbol: String
        var kind: String
        var windowStartMs: Int64
        var windowEndMs: Int64
        var detectedAtMs: Int64
        var suppressed: Bool
    }

    private struct LabelLine: Decodable {
        var symbol: String
        var kind: String
        var startMs: Int64
        var endMs: Int64
    }

    func run() async throws {
        let detections = try Self.readLines(anomalies, flag: "--anomalies", as: AnomalyLine.self).map { line, number in
            guard let kind = AnomalyKind(rawValue: line.kind) else {
                throw CLIError("--anomalies \(anomalies):\(number): unknown kind \"\(line.kind)\"; expected one of \(Self.kindNames)")
            }
            return DetectionEvaluation.Detection(
                symbol: line.symbol, kind: kind, windowStartMs: line.windowStartMs, windowEndMs: line.windowEndMs,
                detectedAtMs: line.detectedAtMs, suppressed: line.suppressed)
        }
        let labelled = try Self.readLines(labels, flag: "--labels", as: LabelLine.self).map { line, number in
            guard let kind = AnomalyKind(rawValue: line.kind) else {
                throw CLIError("--labels \(labels):\(number): unknown kind \"\(line.kind)\"; expected one of \(Self.kindNames)")
            }
            return DetectionEvaluation.Label(symbol: line.symbol, kind: kind, startMs: line.startMs, endMs: line.endMs)
        }
        let report = DetectionEvaluation.evaluate(detections, labels: labelled)
        print(Self.render(report, symbolHours: symbolHours))
        if verbose {
            for alarm in report.falseAlarms {
                print("false alarm: \(alarm.symbol) \(alarm.kind.rawValue) window \(alarm.windowStartMs)..\(alarm.windowEndMs)")
            }
            for label in report.missed {
                print("missed: \(label.symbol) \(label.kind.rawValue) \(label.startMs)..\(label.endMs)")
            }
        }
    }

    static let kindNames = AnomalyKind.allCases.map(\.rawValue).joined(separator: ", ")

    static func render(_ report: DetectionEvaluation.Report, symbolHours: Double?) -> String {
        func ratio(_ value: Double?) -> String { value.map { String(format: "%.2f", $0) } ?? "-" }
        func seconds(_ ms: Double?) -> String { ms.map { String(format: "%.1f s", $0 / 1_000) } ?? "-" }
        let rows = (report.kinds + [report.overall]).map { row in
            [
                row.kind?.rawValue ?? "overall", "\(row.labels)", "\(row.hit)", ratio(row.recall), "\(row.exact)",
                seconds(row.medianDelayMs),
            ]
        }
        var text = renderTable(["kind", "labels", "hit", "recall", "exact", "median delay"], rows)
        text += "\nalerts \(report.alerts) (suppressed repeats not counted: \(report.suppressed)), "
        text += "overlapping a label \(report.truePositives), precision \(ratio(report.precision)), "
        text += "false alarms \(report.falseAlarms.count)"
        if let symbolHours, symbolHours > 0 {
            text += String(format: " (%.2f per symbol-hour over %.2f symbol-hours)", Double(report.falseAlarms.count) / symbolHours, symbolHours)
        }
        return text
    }

    /// Decodes each non-empty line of `path` as `T` (snake_case keys), with its 1-based number.
    static func readLines<T: Decodable>(_ path: String, flag: String, as type: T.Type) throws -> [(T, Int)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("\(flag) \(path): cannot open for reading")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var result: [(T, Int)] = []
        for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            guard line.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") }) else { continue }
            do {
                result.append((try decoder.decode(T.self, from: Data(line)), index + 1))
            } catch {
                throw CLIError("\(flag) \(path):\(index + 1): not a \(T.self == LabelLine.self ? "label" : "anomaly") line (\(error)); expected what `vigil \(T.self == LabelLine.self ? "simulate --labels" : "detect --out")` writes")
            }
        }
        return result
    }
}
