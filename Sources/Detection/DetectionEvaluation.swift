/// Scores detected anomalies against labelled ground truth, such as the simulator's injected
/// anomalies: per kind and overall, how many labels were hit, recall, precision and the median
/// detection delay. What `vigil evaluate` prints.
///
/// ## Definitions
/// - Only **alerts** count: anomalies with `suppressed == false`. A suppressed repeat was never
///   put in front of anyone, so it neither hits a label nor counts as a false alarm.
/// - An alert **overlaps** a label when it is on the label's symbol and its window
///   `[windowStartMs, windowEndMs)` shares at least a millisecond with the label's
///   `[startMs, endMs)`.
/// - A label is **hit** when an overlapping alert has a kind related to the label's
///   (`relatedKinds(of:)`): an anomaly is often first seen through a more generic detector (a
///   flash crash's first window is a price shock, a pump's a price shock and a volume spike),
///   and the specific rule names it later. `exact` counts labels hit by an alert of exactly their
///   kind, to show how often the specific rule named it.
/// - **Recall** = labels hit / labels. **Precision** = alerts overlapping any label of their
///   symbol (whatever the kinds) / all alerts.
/// - **Delay** of a hit label: the `detectedAtMs` of its earliest related alert minus the label's
///   `startMs` (event time; the watermark that closed the window, see `Anomaly`). The median is
///   the middle value, or the mean of the two middle ones.
public enum DetectionEvaluation {
    /// A labelled anomaly: `[startMs, endMs)` of `symbol` shows `kind`.
    public struct Label: Sendable, Equatable, Hashable {
        public var symbol: String
        public var kind: AnomalyKind
        public var startMs: Int64
        public var endMs: Int64

        public init(symbol: String, kind: AnomalyKind, startMs: Int64, endMs: Int64) {
            self.symbol = symbol
            self.kind = kind
            self.startMs = startMs
            self.endMs = endMs
        }
    }

    /// The fields of a detected anomaly an evaluation reads.
    public struct Detection: Sendable, Equatable {
        public var symbol: String
        public var kind: AnomalyKind
        public var windowStartMs: Int64
        public var windowEndMs: Int64
        public var detectedAtMs: Int64
        public var suppressed: Bool

        public init(symbol: String, kind: AnomalyKind, windowStartMs: Int64, windowEndMs: Int64, detectedAtMs: Int64, suppressed: Bool) {
            self.symbol = symbol
            self.kind = kind
            self.windowStartMs = windowStartMs
            self.windowEndMs = windowEndMs
            self.detectedAtMs = detectedAtMs
            self.suppressed = suppressed
        }

        public init(_ anomaly: Anomaly) {
            self.init(
                symbol: anomaly.symbol, kind: anomaly.kind, windowStartMs: anomaly.windowStartMs,
                windowEndMs: anomaly.windowEndMs, detectedAtMs: anomaly.detectedAtMs, suppressed: anomaly.suppressed)
        }

        func overlaps(_ label: Label) -> Bool {
            symbol == label.symbol && windowStartMs < label.endMs && windowEndMs > label.startMs
        }
    }

    /// Recall and delay for the labels of one kind (or of all kinds).
    public struct Row: Sendable, Equatable {
        /// The labels' kind; nil for the overall row.
        public var kind: AnomalyKind?
        public var labels: Int
        public var hit: Int
        /// Labels hit by an alert of exactly their kind.
        public var exact: Int
        /// Delays (ms) of the hit labels, ascending.
        public var delaysMs: [Int64]

        /// `hit / labels`; nil without labels.
        public var recall: Double? { labels > 0 ? Double(hit) / Double(labels) : nil }

        /// Median delay in ms; nil when no label was hit.
        public var medianDelayMs: Double? {
            guard !delaysMs.isEmpty else { return nil }
            let mid = delaysMs.count / 2
            return delaysMs.count % 2 == 1
                ? Double(delaysMs[mid]) : (Double(delaysMs[mid - 1]) + Double(delaysMs[mid])) / 2
        }
    }

    public struct Report: Sendable, Equatable {
        /// One row per label kind present, in `AnomalyKind` order.
        public var kinds: [Row]
        public var overall: Row
        /// Alerts (unsuppressed anomalies) evaluated.
        public var alerts: Int
        /// Of `alerts`, those overlapping a label of their symbol.
        public var truePositives: Int
        /// Suppressed repeats, left out of every count.
        public var suppressed: Int
        /// Alerts overlapping no label, in input order.
        public var falseAlarms: [Detection]
        /// Labels no related alert overlapped, in input order.
        public var missed: [Label]

        /// `truePositives / alerts`; nil without alerts.
        public var precision: Double? { alerts > 0 ? Double(truePositives) / Double(alerts) : nil }
    }

    /// The anomaly kinds that count as detecting a label of `kind`: the kind itself, the
    /// generic detectors that see the same trading first, and `isolation_outlier` (the forest
    /// names no kind, so it may stand for any).
    /// - price moves: `price_shock`, `flash_crash` and `pump_and_dump` detect one another (each is
    ///   a sharp move; the patterns add its shape);
    /// - `pump_and_dump` also by `volume_spike` and `trade_count_spike` (the pump trades heavily);
    /// - `volume_spike` and `trade_count_spike` detect each other;
    /// - `volatility_burst` and `volatility_shock` detect each other;
    /// - `liquidity_gap` only by itself.
    public static func relatedKinds(of kind: AnomalyKind) -> Set<AnomalyKind> {
        var kinds: Set<AnomalyKind> = [kind, .isolationOutlier]
        switch kind {
        case .priceShock, .flashCrash:
            kinds.formUnion([.priceShock, .flashCrash, .pumpAndDump])
        case .pumpAndDump:
            kinds.formUnion([.priceShock, .flashCrash, .volumeSpike, .tradeCountSpike])
        case .volumeSpike, .tradeCountSpike:
            kinds.formUnion([.volumeSpike, .tradeCountSpike])
        case .volatilityBurst, .volatilityShock:
            kinds.formUnion([.volatilityBurst, .volatilityShock])
        case .liquidityGap, .isolationOutlier:
            break
        }
        return kinds
    }

    public static func evaluate(_ detections: [Detection], labels: [Label]) -> Report {
        let alerts = detections.filter { !$0.suppressed }
        var rows: [AnomalyKind: Row] = [:]
        var overall = Row(kind: nil, labels: 0, hit: 0, exact: 0, delaysMs: [])
        var missed: [Label] = []
        for label in labels {
            var row = rows[label.kind] ?? Row(kind: label.kind, labels: 0, hit: 0, exact: 0, delaysMs: [])
            let related = relatedKinds(of: label.kind)
            let hits = alerts.filter { $0.overlaps(label) && related.contains($0.kind) }
            row.labels += 1
            overall.labels += 1
            if hits.contains(where: { $0.kind == label.kind }) {
                row.exact += 1
                overall.exact += 1
            }
            if let first = hits.map(\.detectedAtMs).min() {
                row.hit += 1
                overall.hit += 1
                row.delaysMs.append(first - label.startMs)
                overall.delaysMs.append(first - label.startMs)
            } else {
                missed.append(label)
            }
            rows[label.kind] = row
        }
        var kinds = AnomalyKind.allCases.compactMap { rows[$0] }
        for i in kinds.indices { kinds[i].delaysMs.sort() }
        overall.delaysMs.sort()
        let falseAlarms = alerts.filter { alert in !labels.contains { alert.overlaps($0) } }
        return Report(
            kinds: kinds, overall: overall, alerts: alerts.count, truePositives: alerts.count - falseAlarms.count,
            suppressed: detections.count - alerts.count, falseAlarms: falseAlarms, missed: missed)
    }
}
