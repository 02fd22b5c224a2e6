/// An Isolation Forest (Liu, Ting and Zhou, 2008), as scikit-learn's `IsolationForest` builds it.
///
/// Each tree is grown on `sampleSize` points drawn without replacement from the training set:
/// a node picks a feature at random among those not constant on its points, and a split value
/// uniformly in `[min, max)` of that feature; points `<= split` go left. A node becomes a leaf
/// when it holds one point, when all its points are equal, or at depth `ceil(log2(sampleSize))`.
/// Anomalies are isolated in few splits, so the score
/// `s(x) = 2^(-E[h(x)] / c(sampleSize))` is near 1 for them and at most about 0.5 for ordinary
/// points, where `h(x)` is the depth of the leaf `x` falls in plus `c(points in that leaf)`, and
/// `c(n)` is the average path length of an unsuccessful search in a binary search tree of `n`
/// points. This is sklearn's `-score_samples(x)`.
///
/// Building is a pure function of the training points and the generator: the same inputs give
/// the same forest, bit for bit, which is what makes replays deterministic.
struct IsolationForest: Equatable, Sendable {
    /// One node, stored in pre-order: the left child of node `i` is `i + 1`. 16 bytes, so that a
    /// symbol's forest of 100 trees of 128 points stays within about 400 KB.
    struct Node: Equatable, Sendable {
        /// Points `<= threshold` go left.
        var threshold: Double
        /// Index of the right child (split nodes only).
        var right: Int32
        /// Training points that reached this leaf (leaves only; at most 1 024).
        var size: Int16
        /// Split feature, or -1 for a leaf.
        var feature: Int8
    }

    let dimensions: Int
    let sampleSize: Int
    /// All trees' nodes; tree `t` starts at `roots[t]`.
    private(set) var nodes: [Node] = []
    private(set) var roots: [Int32] = []

    /// Grows `trees` trees over `points` (each of `dimensions` values, row after row).
    /// - Parameters:
    ///   - sampleSize: points per tree, clamped to `1...min(points.count / dimensions, 1024)`.
    init(points: [Double], dimensions: Int, trees: Int, sampleSize: Int, random: inout SeededRandom) {
        precondition(dimensions > 0 && dimensions <= 127 && points.count % dimensions == 0, "points must hold whole rows of at most 127 values")
        self.dimensions = dimensions
        let rows = points.count / dimensions
        self.sampleSize = min(max(1, sampleSize), max(1, rows), 1_024)
        guard rows > 0 else { return }
        let depthLimit = Self.ceilLog2(self.sampleSize)
        var all = Array(0..<rows)
        var featureOrder = Array(0..<dimensions)
        nodes.reserveCapacity(max(1, trees) * (2 * self.sampleSize - 1))
        for _ in 0..<max(1, trees) {
            // Partial Fisher-Yates: the first `sampleSize` of `all` become the sample.
            for i in 0..<self.sampleSize {
                let j = i + random.index(below: rows - i)
                all.swapAt(i, j)
            }
            var sample = Array(all[0..<self.sampleSize])
            roots.append(Int32(nodes.count))
            grow(&sample, 0..<sample.count, depth: 0, depthLimit: depthLimit, points: points, order: &featureOrder, random: &random)
        }
    }

    private mutating func grow(
        _ sample: inout [Int], _ range: Range<Int>, depth: Int, depthLimit: Int, points: [Double],
        order: inout [Int], random: inout SeededRandom
    ) {
        let index = nodes.count
        nodes.append(Node(threshold: 0, right: -1, size: Int16(range.count), feature: -1))
        guard range.count > 1, depth < depthLimit else { return }
        // Draw features without replacement until one varies on this node's points.
        var chosen = -1
        var low = 0.0
        var high = 0.0
        var remaining = dimensions
        while remaining > 0 {
            let pick = random.index(below: remaining)
            let feature = order[pick]
            order.swapAt(pick, remaining - 1)
            remaining -= 1
            low = points[sample[range.lowerBound] * dimensions + feature]
            high = low
            for i in range {
                let v = points[sample[i] * dimensions + feature]
                low = min(low, v)
                high = max(high, v)
            }
            if high > low {
                chosen = feature
                break
            }
        }
        guard chosen >= 0 else { return }
        var threshold = low + random.unit() * (high - low)
        if threshold >= high { threshold = low }  // rounding at the top end; keeps both sides non-empty
        // Partition: points <= threshold first.
        var split = range.lowerBound
        for i in range where points[sample[i] * dimensions + chosen] <= threshold {
            sample.swapAt(i, split)
            split += 1
        }
        nodes[index].feature = Int8(chosen)
        nodes[index].threshold = threshold
        grow(&sample, range.lowerBound..<split, depth: depth + 1, depthLimit: depthLimit, points: points, order: &order, random: &random)
        nodes[index].right = Int32(nodes.count)
        grow(&sample, split..<range.upperBound, depth: depth + 1, depthLimit: depthLimit, points: points, order: &order, random: &random)
    }

    var treeCount: Int { roots.count }

    /// The anomaly score of `x` (`dimensions` values) in `(0, 1]`; 0.5 for a forest without trees.
    func score(_ x: UnsafeBufferPointer<Double>) -> Double {
        guard !roots.isEmpty else { return 0.5 }
        var total = 0.0
        for root in roots {
            var i = Int(root)
            var depth = 0
            while nodes[i].feature >= 0 {
                i = x[Int(nodes[i].feature)] <= nodes[i].threshold ? i + 1 : Int(nodes[i].right)
                depth += 1
            }
            total += Double(depth) + Self.averagePathLength(Int(nodes[i].size))
        }
        let normalizer = Self.averagePathLength(sampleSize)
        guard normalizer > 0 else { return 0.5 }
        return powerOfTwo(-(total / Double(roots.count)) / normalizer)
    }

    func score(_ x: [Double]) -> Double {
        x.withUnsafeBufferPointer { score($0) }
    }

    /// `c(n)`: average path length of an unsuccessful search in a binary search tree of `n` points;
    /// `2 H(n-1) - 2 (n-1) / n` with `H(i) ~ ln(i) + Euler's constant`; c(1) = 0, c(2) = 1.
    static func averagePathLength(_ n: Int) -> Double {
        if n <= 1 { return 0 }
        if n == 2 { return 1 }
        let m = Double(n - 1)
        return 2 * (naturalLog(m) + 0.577_215_664_901_532_9) - 2 * m / Double(n)
    }

    static func ceilLog2(_ n: Int) -> Int {
        var depth = 0
        while (1 << depth) < n { depth += 1 }
        return depth
    }
}

/// `2^x`, through the platform's libm.
@inline(__always)
private func powerOfTwo(_ x: Double) -> Double {
    naturalExp(x * 0.693_147_180_559_945_3)
}
