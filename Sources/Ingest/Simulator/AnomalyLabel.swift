import Detection

/// Ground truth for one anomaly the simulator injected: which symbol, what kind, and the
/// event-time range `[startMs, endMs)` in which that symbol's trades show it.
///
/// Written as one JSON line, `{"symbol":"BTCUSDT","kind":"price_shock","start_ms":…,"end_ms":…}`,
/// so that an evaluation can match detected anomalies against it. The range covers the
/// abnormal trading itself; detectors see it in every window that overlaps it, and a liquidity
/// gap's range contains no trade of its symbol at all.
public struct AnomalyLabel: Sendable, Equatable, Hashable, Codable {
    public var symbol: String
    public var kind: AnomalyKind
    /// First millisecond of the anomaly (inclusive).
    public var startMs: Int64
    /// End of the anomaly (exclusive).
    public var endMs: Int64

    public init(symbol: String, kind: AnomalyKind, startMs: Int64, endMs: Int64) {
        self.symbol = symbol
        self.kind = kind
        self.startMs = startMs
        self.endMs = endMs
    }

    enum CodingKeys: String, CodingKey {
        case symbol, kind
        case startMs = "start_ms"
        case endMs = "end_ms"
    }

    /// True when `timeMs` lies in `[startMs, endMs)`.
    public func contains(timeMs: Int64) -> Bool { timeMs >= startMs && timeMs < endMs }

    /// True when the two labels are on the same symbol and their ranges share at least one millisecond.
    public func overlaps(_ other: AnomalyLabel) -> Bool {
        symbol == other.symbol && startMs < other.endMs && other.startMs < endMs
    }

    /// The label as one JSON object without a trailing newline.
    public var jsonLine: String {
        #"{"symbol":"\#(Self.escaped(symbol))","kind":"\#(kind.rawValue)","start_ms":\#(startMs),"end_ms":\#(endMs)}"#
    }

    /// JSON string escaping; simulator symbols never need it, hand-made labels might.
    private static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
