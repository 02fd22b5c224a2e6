import Detection
import Protocol

// MARK: - The operator's view of /v1/status

extension CoordinatorNode {
    /// Thresholds of the problems the operator's view adds.
    public enum StatusThresholds {
        /// A partition whose watermark has not moved for this long while records arrive or wait
        /// is stalled.
        public static let watermarkStallMs: Int64 = 30_000
        /// A running partition without a stored checkpoint for this many checkpoint intervals has
        /// failing checkpoints.
        public static let checkpointOverdueIntervals: Int64 = 3
        /// How far back `lateRecent` and `recentAnomalies` look.
        public static let lateWindowMs: Int64 = 5 * 60_000
        public static let anomalyWindowMs: Int64 = 15 * 60_000
    }

    /// Adds the operator's view to a status built from membership and assignments: rates, lag in
    /// seconds, checkpoint ages, recent late events and anomalies, per-worker sums, and the
    /// problems they reveal (stalled watermarks, overdue checkpoints). Uses `status.nowMs`.
    func withOperatorView(_ base: ClusterStatus) async throws -> ClusterStatus {
        let now = base.nowMs
        let late = try await storage { try await store.lateEventCounts(storedSince: now - StatusThresholds.lateWindowMs) }
        let digest = try await storage { try await store.anomalyDigest(windowMs: StatusThresholds.anomalyWindowMs, now: now) }
        var status = base
        var stalled: [String] = []
        var overdue: [String] = []
        let checkpointEveryMs = config.settings.checkpointIntervalMs
        for index in status.partitions.indices {
            var p = status.partitions[index]
            let checkpoint = checkpoints[p.partition]
            p.committedOffset = checkpoint?.nextOffset
            p.checkpointAgeMs = p.checkpointAgeMs ?? checkpoint.map { now - $0.takenAtMs }
            p.lateRecent = late[p.partition] ?? 0
            if let owner = p.owner, progress[p.partition] != nil, let view = operatorView.partition(p.partition, epoch: p.epoch) {
                p.inPerSecond = view.inPerSecond
                p.processedPerSecond = view.processedPerSecond
                p.symbols = view.symbols
                p.watermarkAdvancedMs = view.watermarkAdvancedMs
                if p.lag == 0 {
                    p.lagSeconds = 0
                } else if p.lag > 0, let rate = view.inPerSecond, rate > 0 {
                    p.lagSeconds = Double(p.lag) / rate
                }
                let arriving = p.lag > 0 || (view.inPerSecond ?? 0) > 0
                let still = now - view.watermarkAdvancedMs
                if arriving && still >= StatusThresholds.watermarkStallMs {
                    let lag = p.lag >= 0 ? "lag \(p.lag)" : "lag unknown"
                    stalled.append("partition \(p.partition)'s watermark has not advanced for \(Self.age(still)) although records arrive or wait (\(lag), owner \(owner)); the owner is stuck or the trades are late: check its log")
                }
                let lastCheckpoint = max(checkpoint.map { $0.epoch == p.epoch ? $0.takenAtMs : .min } ?? .min, view.ownedSinceMs)
                if now - lastCheckpoint >= StatusThresholds.checkpointOverdueIntervals * checkpointEveryMs {
                    let resume = checkpoint.map { "offset \($0.nextOffset)" } ?? "the start offset"
                    overdue.append("partition \(p.partition) has stored no checkpoint for \(Self.age(now - lastCheckpoint)) (one every \(Self.age(checkpointEveryMs)) expected; owner \(owner)); a failover now would replay from \(resume)")
                }
            }
            status.partitions[index] = p
        }
        for index in status.workers.indices {
            var w = status.workers[index]
            let view = operatorView.worker(w.id)
            w.restarts = view?.restarts
            w.metricsAddress = view?.metricsAddress
            w.cpuPercent = w.state == "up" || w.state == "suspect" ? view?.cpuPercent : nil
            let owned = status.partitions.filter { $0.owner == w.id }
            if !owned.isEmpty {
                w.inPerSecond = Self.sum(owned.map(\.inPerSecond))
                w.processedPerSecond = Self.sum(owned.map(\.processedPerSecond))
                w.symbols = Self.sum(owned.map(\.symbols))
                let lags = owned.map(\.lag).filter { $0 >= 0 }
                w.lag = lags.isEmpty ? nil : lags.reduce(0, +)
                w.lagSeconds = owned.compactMap(\.lagSeconds).max()
                w.watermarkAgeMs = owned.map(\.watermarkMs).filter { $0 != .min }.min().map { now - $0 }
                w.checkpointAgeMs = owned.contains { $0.checkpointAgeMs == nil } ? nil : owned.compactMap(\.checkpointAgeMs).max()
            }
            status.workers[index] = w
        }
        status.problems += stalled + overdue
        status.recentAnomalies = digest
        return status
    }

    // MARK: - Hooks (called where the node accepts an input)

    /// Before `membership.register`: remembers the worker's process and metrics endpoint.
    func noteRegistration(_ request: RegisterRequest) {
        if let member = membership[request.workerID] {
            operatorView.known(worker: request.workerID, pid: member.pid)
        }
        operatorView.registered(worker: request.workerID, pid: request.pid, metricsAddress: request.metricsAddress)
    }

    /// After a heartbeat's progress was recorded: feeds the accepted partitions to the tracker and
    /// the metrics.
    func noteHeartbeat(_ request: HeartbeatRequest, now: Int64) {
        operatorView.load(worker: request.workerID, cpuSeconds: request.cpuSeconds, now: now)
        for item in request.partitions {
            guard let row = assignment(item.partition), row.permitsWrite(by: request.workerID, epoch: item.epoch) else { continue }
            operatorView.progress(item, now: now)
            metrics.heartbeatProgress(item)
        }
    }

    /// After a report was stored (`inserted` are its new anomalies).
    func noteReport(_ request: ReportRequest, inserted: [Anomaly], now: Int64) {
        metrics.reportStored(request, inserted: inserted, latenessMs: config.settings.detection.allowedLatenessMs, now: now)
    }

    func noteReportRejected() {
        metrics.reportRejected()
    }

    func noteCheckpoint(_ summary: CheckpointSummary) {
        metrics.checkpointStored(summary)
    }

    func noteCheckpointRejected() {
        metrics.checkpointRejected()
    }

    func noteRetention(_ deleted: RetentionResult) {
        metrics.retentionApplied(deleted)
    }

    // MARK: Helpers

    private static func sum<T: AdditiveArithmetic>(_ values: [T?]) -> T? {
        let known = values.compactMap { $0 }
        return known.isEmpty ? nil : known.reduce(.zero, +)
    }

    /// "42 s", "3 min 5 s", "2 h 10 min".
    static func age(_ ms: Int64) -> String {
        let seconds = max(0, ms) / 1_000
        switch seconds {
        case ..<60: return "\(seconds) s"
        case ..<3_600: return seconds % 60 == 0 ? "\(seconds / 60) min" : "\(seconds / 60) min \(seconds % 60) s"
        default: return "\(seconds / 3_600) h \((seconds % 3_600) / 60) min"
        }
    }
}
