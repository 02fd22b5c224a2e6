import Protocol

/// What the status page derives from how heartbeats change over time: arrival and processing
/// rates, when a watermark last moved, since when an owner runs a partition, CPU use, process
/// restarts and metrics endpoints. A pure state machine: every input carries `now` (coordinator
/// ms); it never reads a clock. Memory is bounded by partitions and workers.
///
/// Only heartbeats the coordinator accepted (the sender owns the partition under that epoch)
/// should be fed in. Nothing here is persisted: after a coordinator restart, rates and ages start
/// over with the first heartbeats, and restarts are counted from zero.
public struct StatusTracker: Sendable {
    /// Rates are measured over at most this much time (the newest sample against the oldest one
    /// still inside it).
    public var rateWindowMs: Int64
    private var partitions: [Int32: PartitionTrack] = [:]
    private var workers: [String: WorkerTrack] = [:]

    struct Sample: Sendable {
        var atMs: Int64
        var logEnd: Int64
        var nextOffset: Int64
    }

    struct PartitionTrack: Sendable {
        var epoch: Int64
        var ownedSinceMs: Int64
        var samples: [Sample] = []
        var watermarkMs: Int64 = .min
        var watermarkAdvancedMs: Int64
        var nextOffsetAdvancedMs: Int64
        var symbols: Int64?
    }

    struct WorkerTrack: Sendable {
        var pid: Int32
        var restarts = 0
        var metricsAddress: String?
        var cpu: (atMs: Int64, seconds: Double)?
        var cpuPercent: Double?
    }

    public init(rateWindowMs: Int64 = 10_000) {
        self.rateWindowMs = rateWindowMs
    }

    // MARK: - Inputs

    /// A worker registered. A known id with a different process id counts as a restart.
    public mutating func registered(worker: String, pid: Int32, metricsAddress: String?) {
        var track = workers[worker] ?? WorkerTrack(pid: pid)
        if track.pid != pid {
            track.restarts += 1
            track.pid = pid
            track.cpu = nil
            track.cpuPercent = nil
        }
        track.metricsAddress = metricsAddress
        workers[worker] = track
    }

    /// A worker known from before a coordinator restart, so that its first registration with a
    /// new process id counts as a restart.
    public mutating func known(worker: String, pid: Int32) {
        if workers[worker] == nil { workers[worker] = WorkerTrack(pid: pid) }
    }

    /// A heartbeat's CPU time (cumulative seconds of the worker process).
    public mutating func load(worker: String, cpuSeconds: Double, now: Int64) {
        guard var track = workers[worker] else { return }
        if let previous = track.cpu, now - previous.atMs >= 500, cpuSeconds >= previous.seconds {
            track.cpuPercent = (cpuSeconds - previous.seconds) / (Double(now - previous.atMs) / 1_000) * 100
            track.cpu = (now, cpuSeconds)
        } else if track.cpu == nil || cpuSeconds < track.cpu!.seconds {
            track.cpu = (now, cpuSeconds)
        }
        workers[worker] = track
    }

    /// One partition's progress from an accepted heartbeat. A new epoch starts the partition's
    /// history over (new owner).
    public mutating func progress(_ p: PartitionProgress, now: Int64) {
        var track = partitions[p.partition].flatMap { $0.epoch == p.epoch ? $0 : nil }
            ?? PartitionTrack(epoch: p.epoch, ownedSinceMs: now, watermarkAdvancedMs: now, nextOffsetAdvancedMs: now)
        if p.watermarkMs > track.watermarkMs {
            if track.watermarkMs != .min { track.watermarkAdvancedMs = now }
            track.watermarkMs = p.watermarkMs
        }
        if let last = track.samples.last, p.nextOffset > last.nextOffset {
            track.nextOffsetAdvancedMs = now
        }
        track.symbols = p.symbols ?? track.symbols
        track.samples.append(Sample(atMs: now, logEnd: p.logEndOffset, nextOffset: p.nextOffset))
        // Keep one sample at or before the window's start, so the rate spans the whole window.
        while track.samples.count > 2, track.samples[1].atMs <= now - rateWindowMs {
            track.samples.removeFirst()
        }
        partitions[p.partition] = track
    }

    /// Forgets a worker that left the status page.
    public mutating func forget(worker: String) {
        workers[worker] = nil
    }

    // MARK: - Outputs

    public struct PartitionView: Sendable, Equatable {
        /// Records arriving per second; nil until two samples with a known log end span 1 s.
        public var inPerSecond: Double?
        /// Records processed per second; nil until two samples span 1 s.
        public var processedPerSecond: Double?
        public var ownedSinceMs: Int64
        public var watermarkAdvancedMs: Int64
        /// Last time the next offset moved (or since the owner started, if it never did).
        public var nextOffsetAdvancedMs: Int64
        public var symbols: Int64?
    }

    public func partition(_ partition: Int32, epoch: Int64) -> PartitionView? {
        guard let track = partitions[partition], track.epoch == epoch else { return nil }
        var view = PartitionView(
            ownedSinceMs: track.ownedSinceMs, watermarkAdvancedMs: track.watermarkAdvancedMs,
            nextOffsetAdvancedMs: track.nextOffsetAdvancedMs, symbols: track.symbols)
        if let first = track.samples.first, let last = track.samples.last, last.atMs - first.atMs >= 1_000 {
            let seconds = Double(last.atMs - first.atMs) / 1_000
            view.processedPerSecond = Double(max(0, last.nextOffset - first.nextOffset)) / seconds
            if first.logEnd >= 0 && last.logEnd >= 0 {
                view.inPerSecond = Double(max(0, last.logEnd - first.logEnd)) / seconds
            }
        }
        return view
    }

    public struct WorkerView: Sendable, Equatable {
        public var restarts: Int
        public var metricsAddress: String?
        public var cpuPercent: Double?

        public init(restarts: Int, metricsAddress: String?, cpuPercent: Double?) {
            self.restarts = restarts
            self.metricsAddress = metricsAddress
            self.cpuPercent = cpuPercent
        }
    }

    public func worker(_ id: String) -> WorkerView? {
        workers[id].map { WorkerView(restarts: $0.restarts, metricsAddress: $0.metricsAddress, cpuPercent: $0.cpuPercent) }
    }
}
