extension DetectionConfig {
    /// How each symbol's Isolation Forest is trained and read.
    ///
    /// A symbol's forest is trained on the feature vectors of its last `historyWindows` closed
    /// windows, first once `minTrainingWindows` are held, then again after every
    /// `retrainEveryWindows` more. Model number `g` of a symbol draws every random choice from
    /// `SeededRandom(symbol:generation: g)`, so the forest is a pure function of the symbol, the
    /// generation and the windows it was trained on: replays and restores score identically.
    /// A window is scored before it joins the history, like the baseline.
    public struct IsolationForestSettings: Codable, Sendable, Equatable {
        public var trees: Int
        /// Points drawn (without replacement) to grow each tree; sklearn's `max_samples`.
        public var sampleSize: Int
        public var historyWindows: Int
        public var retrainEveryWindows: Int
        public var minTrainingWindows: Int
        /// Score (0...1, 0.5 = ordinary) at or above which a window is an outlier.
        public var threshold: Double

        public init(
            trees: Int = 100, sampleSize: Int = 128, historyWindows: Int = 180, retrainEveryWindows: Int = 30,
            minTrainingWindows: Int = 15, threshold: Double = 0.55
        ) {
            self.trees = trees
            self.sampleSize = sampleSize
            self.historyWindows = historyWindows
            self.retrainEveryWindows = retrainEveryWindows
            self.minTrainingWindows = minTrainingWindows
            self.threshold = threshold
        }

        /// What makes these settings unusable, one line per problem.
        func validationProblems() -> [String] {
            var problems: [String] = []
            if trees < 1 || trees > 1_000 { problems.append("isolationForest.trees must be in 1...1000 (got \(trees))") }
            if sampleSize < 2 || sampleSize > 1_024 {
                problems.append("isolationForest.sampleSize must be in 2...1024 (got \(sampleSize))")
            }
            if historyWindows < 2 || historyWindows > 10_000 {
                problems.append("isolationForest.historyWindows must be in 2...10000 (got \(historyWindows))")
            }
            if retrainEveryWindows < 1 || retrainEveryWindows > 10_000 {
                problems.append("isolationForest.retrainEveryWindows must be in 1...10000 (got \(retrainEveryWindows))")
            }
            if minTrainingWindows < 2 || minTrainingWindows > historyWindows {
                problems.append("isolationForest.minTrainingWindows must be in 2...historyWindows (\(historyWindows)) (got \(minTrainingWindows))")
            }
            if !(threshold > 0 && threshold < 1) {
                problems.append("isolationForest.threshold must be between 0 and 1 (got \(threshold))")
            }
            return problems
        }
    }

    /// Thresholds of the pattern rules (see `PatternDetector`). Moves are measured in units of
    /// the baseline's robust scale of window returns, like z-scores.
    public struct PatternSettings: Codable, Sendable, Equatable {
        /// A flash crash's (or spike's) first leg, and a pump's rise, must move the price by at
        /// least this many baseline return scales.
        public var moveZ: Double
        /// A flash crash must win back at least this fraction of its first leg.
        public var reversionFraction: Double
        /// A dump must give back at least this fraction of the pump's rise.
        public var dumpFraction: Double
        /// A volatility burst needs the realized volatility at least this many times its
        /// baseline median (on top of its z-score reaching the threshold).
        public var burstVolatilityRatio: Double
        /// A liquidity gap fires when the longest stretch without trades would, at the baseline's
        /// median trade rate, have held at least this many trades.
        public var gapExpectedTrades: Double
        /// And lasts at least this long (ms).
        public var gapMinMs: Int64

        public init(
            moveZ: Double = 8, reversionFraction: Double = 0.3, dumpFraction: Double = 0.5,
            burstVolatilityRatio: Double = 2, gapExpectedTrades: Double = 30, gapMinMs: Int64 = 5_000
        ) {
            self.moveZ = moveZ
            self.reversionFraction = reversionFraction
            self.dumpFraction = dumpFraction
            self.burstVolatilityRatio = burstVolatilityRatio
            self.gapExpectedTrades = gapExpectedTrades
            self.gapMinMs = gapMinMs
        }

        func validationProblems() -> [String] {
            var problems: [String] = []
            if !(moveZ > 0) || !moveZ.isFinite { problems.append("patterns.moveZ must be a finite number > 0 (got \(moveZ))") }
            if !(reversionFraction > 0 && reversionFraction <= 1) {
                problems.append("patterns.reversionFraction must be in (0, 1] (got \(reversionFraction))")
            }
            if !(dumpFraction > 0 && dumpFraction <= 1) {
                problems.append("patterns.dumpFraction must be in (0, 1] (got \(dumpFraction))")
            }
            if !(burstVolatilityRatio >= 1) || !burstVolatilityRatio.isFinite {
                problems.append("patterns.burstVolatilityRatio must be a finite number >= 1 (got \(burstVolatilityRatio))")
            }
            if !(gapExpectedTrades > 0) || !gapExpectedTrades.isFinite {
                problems.append("patterns.gapExpectedTrades must be a finite number > 0 (got \(gapExpectedTrades))")
            }
            if gapMinMs < 0 { problems.append("patterns.gapMinMs must be >= 0 (got \(gapMinMs))") }
            return problems
        }
    }

    /// `isolationForest`, or the defaults when unset.
    public var effectiveIsolationForest: IsolationForestSettings { isolationForest ?? IsolationForestSettings() }

    /// `patterns`, or the defaults when unset.
    public var effectivePatterns: PatternSettings { patterns ?? PatternSettings() }

    /// `qualityMediumMagnitude`, or 1.5 when unset.
    public var effectiveQualityMediumMagnitude: Double { qualityMediumMagnitude ?? 1.5 }
}
