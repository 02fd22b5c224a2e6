/// One symbol's Isolation Forest and the rolling history it is trained on.
///
/// The history keeps the feature vectors of the symbol's last `historyWindows +
/// retrainEveryWindows` closed windows, enough to hold the training set of the current forest
/// (the `trainedOn` vectors that ended `windowsSinceTraining` windows ago) until the next
/// retraining. A snapshot stores the history and the schedule, never the trees: the forest is
/// rebuilt from them on restore, bit for bit (see `IsolationForest`, `SeededRandom`).
///
/// History vectors are kept at `Float` precision (half the memory and snapshot bytes; plenty for
/// split values), and a forest is only ever trained on them, live or restored, so both agree.
/// The window being scored keeps full precision.
///
/// Schedule: every closed window is scored (once a forest exists) and then appended. The first
/// forest is trained as soon as `minTrainingWindows` vectors are held, the next ones after every
/// `retrainEveryWindows` further windows, each on the last `historyWindows` vectors, each with
/// the next generation number.
struct IsolationModel: Equatable, Sendable {
    static let dimensions = 9

    let trees: Int
    let sampleSize: Int
    let historyWindows: Int
    let retrainEveryWindows: Int
    let minTrainingWindows: Int
    let symbol: String

    /// Ring of vectors, `dimensions` values each; row `(head + i) % capacity` is the i-th oldest.
    private var rows: [Float] = []
    private var head = 0
    private(set) var count = 0
    /// Windows appended since the current forest was trained (0 before the first).
    private(set) var windowsSinceTraining = 0
    /// Number of forests trained so far; the current one is number `generation`.
    private(set) var generation: UInt64 = 0
    /// Vectors the current forest was trained on (0 before the first).
    private(set) var trainedOn = 0
    private(set) var forest: IsolationForest?

    init(settings: DetectionConfig.IsolationForestSettings, symbol: String) {
        trees = min(max(1, settings.trees), 1_000)
        sampleSize = min(max(2, settings.sampleSize), 1_024)
        historyWindows = min(max(2, settings.historyWindows), 10_000)
        retrainEveryWindows = min(max(1, settings.retrainEveryWindows), 10_000)
        minTrainingWindows = min(max(2, settings.minTrainingWindows), historyWindows)
        self.symbol = symbol
    }

    /// Vectors the history holds at most.
    var capacity: Int { historyWindows + retrainEveryWindows }

    /// The vectors held, oldest first.
    var history: [[Float]] {
        (0..<count).map { row($0) }
    }

    /// The outlier score of `window` (see `IsolationForest.score`), or nil before the first forest.
    func score(_ window: WindowFeatures, windowMs: Int64) -> Double? {
        guard let forest else { return nil }
        let vector = window.isolationVector(windowMs: windowMs)
        return forest.score(vector)
    }

    /// Appends `window`'s vector, and trains a new forest when one is due.
    mutating func append(_ window: WindowFeatures, windowMs: Int64) {
        push(window.isolationVector(windowMs: windowMs).map { Float($0) })
        if forest == nil {
            if count >= minTrainingWindows { train() }
        } else {
            windowsSinceTraining += 1
            if windowsSinceTraining >= retrainEveryWindows { train() }
        }
    }

    /// Replaces the state with what a snapshot held, rebuilding the forest it implies.
    /// Returns a problem description, or nil when the state is consistent.
    mutating func restore(history: [[Float]], windowsSinceTraining: Int, generation: UInt64, trainedOn: Int) -> String? {
        guard history.count <= capacity else { return "\(history.count) isolation vectors, at most \(capacity) expected" }
        guard history.allSatisfy({ $0.count == Self.dimensions }) else { return "isolation vector of the wrong size" }
        rows = []
        head = 0
        count = 0
        forest = nil
        for vector in history { push(vector) }
        self.windowsSinceTraining = windowsSinceTraining
        self.generation = generation
        self.trainedOn = trainedOn
        if generation == 0 {
            guard trainedOn == 0, windowsSinceTraining == 0 else { return "isolation schedule without a forest" }
            return nil
        }
        guard trainedOn >= 1, trainedOn <= historyWindows, windowsSinceTraining >= 0,
            windowsSinceTraining < retrainEveryWindows, trainedOn + windowsSinceTraining <= count
        else {
            return "isolation schedule (trained on \(trainedOn), \(windowsSinceTraining) since) does not fit \(count) vectors"
        }
        let end = count - windowsSinceTraining
        build(from: end - trainedOn, to: end)
        return nil
    }

    private mutating func train() {
        trainedOn = min(count, historyWindows)
        generation &+= 1
        windowsSinceTraining = 0
        build(from: count - trainedOn, to: count)
    }

    /// Grows the forest of generation `generation` on rows `start ..< end` (oldest-first indices).
    private mutating func build(from start: Int, to end: Int) {
        var points: [Double] = []
        points.reserveCapacity((end - start) * Self.dimensions)
        for i in start..<end { points += row(i).map { Double($0) } }
        var random = SeededRandom(symbol: symbol, generation: generation)
        forest = IsolationForest(
            points: points, dimensions: Self.dimensions, trees: trees, sampleSize: sampleSize, random: &random)
    }

    private func row(_ i: Int) -> [Float] {
        let r = (head + i) % capacity
        return Array(rows[(r * Self.dimensions)..<((r + 1) * Self.dimensions)])
    }

    private mutating func push(_ vector: [Float]) {
        if count < capacity {
            rows += vector
            count += 1
        } else {
            let base = head * Self.dimensions
            rows.replaceSubrange(base..<(base + Self.dimensions), with: vector)
            head = (head + 1) % capacity
        }
    }
}

extension WindowFeatures {
    /// The window as the Isolation Forest sees it: log return, log range `ln(high / low)`,
    /// `ln(volatility + 1e-6)`, `ln(1 + trades)`, `ln(1 + quote volume)`, taker-buy ratio,
    /// longest gap as a fraction of the window, rush-order volume share, `ln(1 + quote volume of
    /// the last pane)` (a burst just begun). Logarithms tame the
    /// heavy tails of volumes and counts, so that the forest's uniform split values fall where
    /// the data is.
    func isolationVector(windowMs: Int64) -> [Double] {
        [
            logReturn,
            low > 0 ? naturalLog(high / low) : 0,
            naturalLog(volatility + 1e-6),
            naturalLog(1 + Double(count)),
            naturalLog(1 + quoteVolume),
            takerBuyRatio,
            windowMs > 0 ? Double(longestGapMs) / Double(windowMs) : 0,
            rushVolumeShare,
            naturalLog(1 + recentQuoteVolume),
        ]
    }
}
