import Foundation
import XCTest

@testable import Detection

/// The Isolation Forest: hand-checkable cases, determinism, the per-symbol model's schedule and
/// restore, and agreement with scikit-learn on a fixture (`scripts/isolation_forest_fixture.py`).
final class IsolationForestTests: XCTestCase {
    func testAveragePathLength() {
        XCTAssertEqual(IsolationForest.averagePathLength(0), 0)
        XCTAssertEqual(IsolationForest.averagePathLength(1), 0)
        XCTAssertEqual(IsolationForest.averagePathLength(2), 1)
        // 2 (ln 2 + 0.5772) - 2 * 2 / 3 = 1.2074
        XCTAssertEqual(IsolationForest.averagePathLength(3), 2 * (log(2) + 0.5772156649015329) - 4.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(IsolationForest.averagePathLength(256), 10.2448, accuracy: 1e-4)
        XCTAssertEqual([1, 2, 3, 128, 129].map(IsolationForest.ceilLog2), [0, 1, 2, 7, 8])
        XCTAssertEqual(MemoryLayout<IsolationForest.Node>.stride, 16, "a symbol's default forest: at most 100 x 255 x 16 B")
    }

    func testIdenticalPointsScoreOneHalf() {
        // Every tree is one leaf of 8 points: h = 0 + c(8) = c(8), so s = 2^(-1) = 0.5.
        var random = SeededRandom(seed: 1)
        let forest = IsolationForest(points: Array(repeating: 3.0, count: 16), dimensions: 2, trees: 10, sampleSize: 8, random: &random)
        XCTAssertEqual(forest.treeCount, 10)
        XCTAssertEqual(forest.nodes.count, 10)
        XCTAssertEqual(forest.score([3, 3]), 0.5, accuracy: 1e-15)
        XCTAssertEqual(forest.score([100, -100]), 0.5, accuracy: 1e-15, "nothing to split on: nothing is isolated")
    }

    func testTwoPointsSplitOnceAndScoreOneHalf() {
        // Sample size 2: depth limit 1, the root splits the two points apart, each leaf holds one:
        // h = 1 + c(1) = 1 = c(2), s = 0.5 for both.
        var random = SeededRandom(seed: 7)
        let forest = IsolationForest(points: [0, 0, 1, 5], dimensions: 2, trees: 5, sampleSize: 2, random: &random)
        XCTAssertEqual(forest.nodes.count, 15)
        XCTAssertEqual(forest.score([0, 0]), 0.5, accuracy: 1e-15)
        XCTAssertEqual(forest.score([1, 5]), 0.5, accuracy: 1e-15)
        for root in forest.roots {
            let node = forest.nodes[Int(root)]
            XCTAssertGreaterThanOrEqual(node.feature, 0)
            let (low, high) = node.feature == 0 ? (0.0, 1.0) : (0.0, 5.0)
            XCTAssertTrue(node.threshold >= low && node.threshold < high, "split in [min, max): \(node.threshold)")
        }
    }

    func testAnOutlierScoresHighestAndScoresAreDeterministic() {
        var rng = SplitMix64(seed: 4)
        var points: [Double] = []
        for _ in 0..<200 { points += [Double.random(in: -1...1, using: &rng), Double.random(in: -1...1, using: &rng)] }
        points += [6, 6]
        var first = SeededRandom(symbol: "BTCUSDT", generation: 3)
        var again = SeededRandom(symbol: "BTCUSDT", generation: 3)
        var next = SeededRandom(symbol: "BTCUSDT", generation: 4)
        let forest = IsolationForest(points: points, dimensions: 2, trees: 100, sampleSize: 64, random: &first)
        XCTAssertEqual(IsolationForest(points: points, dimensions: 2, trees: 100, sampleSize: 64, random: &again), forest)
        XCTAssertNotEqual(IsolationForest(points: points, dimensions: 2, trees: 100, sampleSize: 64, random: &next), forest)
        let outlier = forest.score([6, 6])
        let center = forest.score([0, 0])
        XCTAssertGreaterThan(outlier, 0.6)
        XCTAssertLessThan(center, 0.5)
        XCTAssertEqual(forest.score([0, 0]), center, "scoring is pure")
    }

    func testSeededRandomIsSplitMix64() {
        // SplitMix64 from seed 0: the reference implementation's first outputs.
        var random = SeededRandom(seed: 0)
        XCTAssertEqual(random.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(random.next(), 0x6E78_9E6A_A1B9_65F4)
        var a = SeededRandom(symbol: "ETHUSDT", generation: 1)
        var b = SeededRandom(symbol: "ETHUSDT", generation: 1)
        var c = SeededRandom(symbol: "ETHUSDT", generation: 2)
        let first = a.next()
        XCTAssertEqual(first, b.next())
        XCTAssertNotEqual(first, c.next())
        for _ in 0..<1_000 {
            let u = a.unit()
            XCTAssertTrue(u >= 0 && u < 1)
            XCTAssertTrue((0..<7).contains(a.index(below: 7)))
        }
    }

    // MARK: - The per-symbol model

    private func window(_ i: Int) -> WindowFeatures {
        var w = WindowFeatures.empty(carriedClose: 100, windowMs: 60_000)
        w.count = Int64(100 + i % 7)
        w.quoteVolume = Double(10_000 + 37 * (i % 11))
        w.logReturn = Double(i % 5 - 2) * 1e-4
        return w
    }

    func testTrainingSchedule() {
        let settings = DetectionConfig.IsolationForestSettings(
            trees: 10, sampleSize: 16, historyWindows: 4, retrainEveryWindows: 2, minTrainingWindows: 3, threshold: 0.6)
        var model = IsolationModel(settings: settings, symbol: "X")
        XCTAssertEqual(model.capacity, 6)
        var log: [String] = []
        for i in 0..<9 {
            XCTAssertEqual(model.score(window(i), windowMs: 60_000) == nil, i < 3, "no forest before 3 windows")
            model.append(window(i), windowMs: 60_000)
            log.append("\(model.count):\(model.generation):\(model.trainedOn):\(model.windowsSinceTraining)")
        }
        // Trained at 3 windows (on 3), then every 2 more, each on the last 4 at most.
        XCTAssertEqual(log, ["1:0:0:0", "2:0:0:0", "3:1:3:0", "4:1:3:1", "5:2:4:0", "6:2:4:1", "6:3:4:0", "6:3:4:1", "6:4:4:0"])
        XCTAssertEqual(model.forest?.sampleSize, 4, "the sample is capped by the training set")
    }

    func testRestoreRebuildsTheSameForest() {
        let settings = DetectionConfig.IsolationForestSettings(
            trees: 20, sampleSize: 8, historyWindows: 5, retrainEveryWindows: 3, minTrainingWindows: 4, threshold: 0.6)
        var model = IsolationModel(settings: settings, symbol: "SOLUSDT")
        for i in 0..<11 { model.append(window(i), windowMs: 60_000) }
        XCTAssertEqual(model.windowsSinceTraining, 1)
        var restored = IsolationModel(settings: settings, symbol: "SOLUSDT")
        XCTAssertNil(restored.restore(
            history: model.history, windowsSinceTraining: model.windowsSinceTraining, generation: model.generation,
            trainedOn: model.trainedOn))
        XCTAssertEqual(restored.forest, model.forest)
        for i in 11..<20 {
            XCTAssertEqual(restored.score(window(i), windowMs: 60_000), model.score(window(i), windowMs: 60_000))
            model.append(window(i), windowMs: 60_000)
            restored.append(window(i), windowMs: 60_000)
        }
        XCTAssertEqual(restored.history, model.history)
        XCTAssertEqual(restored.forest, model.forest)
        XCTAssertEqual([restored.generation, UInt64(restored.trainedOn)], [model.generation, UInt64(model.trainedOn)])
        var bad = IsolationModel(settings: settings, symbol: "SOLUSDT")
        XCTAssertNotNil(bad.restore(history: model.history, windowsSinceTraining: 3, generation: 2, trainedOn: 5), "retrain overdue")
        XCTAssertNotNil(bad.restore(history: [[1, 2]], windowsSinceTraining: 0, generation: 0, trainedOn: 0), "wrong width")
    }

    // MARK: - Against scikit-learn

    private struct Fixture: Decodable {
        var trees: Int
        var max_samples: Int
        var dimensions: Int
        var train: [[Double]]
        var test: [[Double]]
        var sklearn_scores: [Double]
    }

    func testRanksLikeScikitLearn() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/isolation_forest.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        XCTAssertEqual(fixture.test.count, fixture.sklearn_scores.count)
        for seed: UInt64 in [1, 2, 3] {
            var random = SeededRandom(seed: seed)
            let forest = IsolationForest(
                points: fixture.train.flatMap { $0 }, dimensions: fixture.dimensions, trees: fixture.trees,
                sampleSize: fixture.max_samples, random: &random)
            let scores = fixture.test.map { forest.score($0) }
            let rho = spearman(scores, fixture.sklearn_scores)
            XCTAssertGreaterThanOrEqual(rho, 0.9, "seed \(seed): Spearman rank correlation with sklearn \(rho)")
        }
    }

    func testSpearmanByHand() {
        XCTAssertEqual(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1, accuracy: 1e-12)
        XCTAssertEqual(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1, accuracy: 1e-12)
        // Ranks [1, 2, 3] and [1.5, 1.5, 3] (a tie): Pearson of the ranks = 0.866.
        XCTAssertEqual(spearman([1, 2, 3], [5, 5, 9]), 0.8660254, accuracy: 1e-6)
    }
}

/// Spearman's rank correlation: Pearson's correlation of the ranks, ties given their mean rank.
func spearman(_ a: [Double], _ b: [Double]) -> Double {
    func ranks(_ x: [Double]) -> [Double] {
        let order = x.indices.sorted { x[$0] < x[$1] }
        var result = [Double](repeating: 0, count: x.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
            for k in i...j { result[order[k]] = Double(i + j) / 2 + 1 }
            i = j + 1
        }
        return result
    }
    let ra = ranks(a)
    let rb = ranks(b)
    let n = Double(a.count)
    let ma = ra.reduce(0, +) / n
    let mb = rb.reduce(0, +) / n
    var cov = 0.0
    var va = 0.0
    var vb = 0.0
    for i in ra.indices {
        cov += (ra[i] - ma) * (rb[i] - mb)
        va += (ra[i] - ma) * (ra[i] - ma)
        vb += (rb[i] - mb) * (rb[i] - mb)
    }
    return cov / (va * vb).squareRoot()
}
