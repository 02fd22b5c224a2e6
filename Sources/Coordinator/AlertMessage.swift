import Detection
import Foundation

/// The body of an alert, in Slack's incoming-webhook format: a one-line `text` (what most chat
/// tools show) and one attachment with the severity's colour, the observed and expected values,
/// the window, the detector scores and a link to the dashboard. Other webhook receivers get the
/// same JSON.
public struct AlertMessage: Codable, Sendable, Equatable {
    public var text: String
    public var attachments: [Attachment]

    public struct Attachment: Codable, Sendable, Equatable {
        public var color: String
        public var fallback: String
        public var title: String
        public var titleLink: String?
        public var text: String
        public var fields: [Field]
        public var footer: String
        /// Unix seconds of the window end (Slack shows it as the attachment's time).
        public var ts: Int64

        enum CodingKeys: String, CodingKey {
            case color, fallback, title, titleLink = "title_link", text, fields, footer, ts
        }
    }

    public struct Field: Codable, Sendable, Equatable {
        public var title: String
        public var value: String
        public var short: Bool
    }

    /// Colours by severity (Slack attachment `color`).
    public static func color(_ severity: Severity) -> String {
        switch severity {
        case .critical: "#e5484d"
        case .high: "#f08c2b"
        case .medium: "#e5c33c"
        case .low: "#4f9cf0"
        }
    }

    public init(_ a: Anomaly, cluster: String, dashboardURL: String?) {
        let kind = a.kind.rawValue.replacingOccurrences(of: "_", with: " ")
        let headline = "\(a.severity.rawValue.uppercased()) \(kind) on \(a.symbol)"
        let link = dashboardURL.map { base in
            let trimmed = base.hasSuffix("/") ? String(base.dropLast()) : base
            return "\(trimmed)/#symbol=\(a.symbol)"
        }
        text = link.map { "\(headline): \(a.description) (<\($0)|dashboard>)" } ?? "\(headline): \(a.description)"
        let scores = a.scores.sorted { $0.key < $1.key }.map { "\($0.key) \(Self.number($0.value))" }.joined(separator: ", ")
        var fields = [
            Field(title: "Current", value: Self.number(a.value), short: true),
            Field(title: "Expected", value: Self.number(a.expected), short: true),
            Field(title: "Window (UTC)", value: "\(Self.time(a.windowStartMs)) – \(Self.time(a.windowEndMs))", short: false),
            Field(title: "Quality", value: a.quality.rawValue, short: true),
            Field(title: "Partition", value: "\(a.partition) @ \(a.offset)", short: true),
        ]
        if !scores.isEmpty { fields.append(Field(title: "Scores", value: scores, short: false)) }
        attachments = [Attachment(
            color: Self.color(a.severity), fallback: "\(headline): \(a.description)", title: "\(a.symbol) \(kind) (\(a.severity.rawValue))",
            titleLink: link, text: a.description, fields: fields, footer: "Vigil \(cluster) · anomaly \(a.id)", ts: a.windowEndMs / 1_000)]
    }

    /// The JSON body to POST.
    public func body() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(self))
    }

    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "n/a" }
        let magnitude = abs(value)
        if magnitude != 0 && (magnitude < 0.001 || magnitude >= 1e9) { return String(format: "%.4g", value) }
        return String(format: magnitude >= 100 ? "%.2f" : "%.6g", value)
    }

    static func time(_ ms: Int64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1_000))
    }
}
