import Detection
import Protocol

// MARK: - Operator API

extension CoordinatorNode {
    /// `GET /v1/status`: workers (down ones until forgotten), every partition, the anomaly count and
    /// the problems an operator should act on.
    ///
    /// A partition's offsets and counters come from its owner's latest heartbeat; until the owner
    /// reports, `nextOffset` and `watermarkMs` come from the latest checkpoint (else -1 and
    /// `Int64.min`) and the counters are 0. `lag` is -1 unless both offsets are known.
    /// Worker `state` is "up", "suspect", "leaving" (handing off before it exits), "down", or
    /// "restored" (known from before a coordinator restart, not registered again yet).
    public func status() async throws -> ClusterStatus {
        let anomalyCount = try await storage { try await store.anomalyCount() }
        let now = clock()
        return try await withOperatorView(ClusterStatus(
            clusterName: config.clusterName, coordinator: config.listenAddress, startedAtMs: startedAtMs, nowMs: now,
            workers: workerStatuses(), partitions: assignments.map(partitionStatus), anomalyCount: anomalyCount,
            problems: problems(now: now)))
    }

    /// `GET /v1/anomalies`: see `AnomalyQuery` for filters and order.
    public func anomalies(_ query: AnomalyQuery) async throws -> [StoredAnomaly] {
        try await storage { try await store.anomalies(query) }
    }

    /// `GET /v1/anomalies/{id}`.
    public func anomaly(id: String) async throws -> StoredAnomaly {
        guard let stored = try await storage({ try await store.anomaly(id: id) }) else {
            throw CoordinatorError(.notFound, "no anomaly with id \(id); list them with GET \(RPCPath.anomalies)")
        }
        return stored
    }

    /// `POST /v1/anomalies/{id}/ack?by=NAME`: acknowledges an anomaly. Idempotent: a second
    /// acknowledgement keeps the first one's time and name.
    public func acknowledge(id: String, by: String) async throws -> AckResponse {
        let now = clock()
        guard let stored = try await storage({ try await store.acknowledge(id: id, by: by, now: now) }) else {
            throw CoordinatorError(.notFound, "no anomaly with id \(id); list them with GET \(RPCPath.anomalies)")
        }
        logger.info("anomaly acknowledged", metadata: ["anomaly.id": "\(id)", "by": "\(stored.acknowledgedBy ?? by)"])
        return AckResponse(id: id, acknowledged: stored.acknowledged, acknowledgedAtMs: stored.acknowledgedAtMs, acknowledgedBy: stored.acknowledgedBy)
    }

    // MARK: Status parts

    private func workerStatuses() -> [WorkerStatus] {
        membership.members.map { member in
            let owned = assignments.filter { $0.owner == member.id }.map(\.partition)
            let load = workerLoad[member.id]
            return WorkerStatus(
                id: member.id, address: member.address, pid: member.pid, state: member.state.rawValue,
                registeredAtMs: member.registeredAtMs, lastHeartbeatMs: member.lastHeartbeatMs, partitions: owned,
                recordsPerSecond: owned.reduce(0) { $0 + (progress[$1]?.recordsPerSecond ?? 0) },
                rssBytes: load?.rssBytes ?? 0, cpuSeconds: load?.cpuSeconds ?? 0)
        }
    }

    private func partitionStatus(_ row: PartitionAssignment) -> PartitionStatus {
        let reported = progress[row.partition]
        let checkpoint = checkpoints[row.partition]
        let nextOffset = reported?.nextOffset ?? checkpoint?.nextOffset ?? -1
        let logEnd = reported?.logEndOffset ?? -1
        var status = PartitionStatus(
            partition: row.partition, owner: row.owner, epoch: row.epoch, nextOffset: nextOffset, logEndOffset: logEnd,
            lag: nextOffset >= 0 && logEnd >= 0 ? max(0, logEnd - nextOffset) : -1,
            consumed: reported?.consumed ?? 0, windowed: reported?.windowed ?? 0, late: reported?.late ?? 0,
            malformed: reported?.malformed ?? 0, watermarkMs: reported?.watermarkMs ?? checkpoint?.watermarkMs ?? .min,
            lost: lost[row.partition] ?? [])
        status.assignedAtMs = row.owner == nil ? nil : assignedAt[row.partition]
        if let checkpoint {
            status.checkpointID = checkpoint.checkpointID
            status.checkpointEpoch = checkpoint.epoch
            status.checkpointAgeMs = max(0, clock() - checkpoint.takenAtMs)
            status.checkpointDurationMs = checkpoint.durationMs
            status.checkpointBytes = Int64(checkpoint.size)
        }
        return status
    }

    /// One line per problem, most urgent first: unowned partitions, workers that are not healthy,
    /// offsets lost to retention.
    private func problems(now: Int64) -> [String] {
        var problems: [String] = []
        let unowned = assignments.filter { $0.owner == nil }.map(\.partition)
        if !unowned.isEmpty {
            let noun = unowned.count == 1 ? "partition \(unowned[0]) has" : "partitions \(Self.list(unowned)) have"
            problems.append("\(noun) no owner: no live worker; start a worker (vigil worker --coordinator \(config.listenAddress))")
        }
        for member in membership.members {
            let owned = assignments.filter { $0.owner == member.id }.map(\.partition)
            let silence = Self.seconds(now - member.lastHeartbeatMs)
            switch member.state {
            case .suspect:
                problems.append("worker \(member.id) is suspect: no heartbeat for \(silence) s (down after \(Self.seconds(membership.leaseTimeoutMs)) s)")
            case .restored where !owned.isEmpty:
                problems.append("worker \(member.id) has not registered since the coordinator restarted \(silence) s ago; its partitions \(Self.list(owned)) wait for it")
            case .restored, .up, .leaving, .down:
                break
            }
        }
        for (partition, ranges) in lost.sorted(by: { $0.key < $1.key }) {
            for range in ranges {
                problems.append("partition \(partition) lost offsets \(range.from)..\(range.to) to retention (\(range.to - range.from) records never processed)")
            }
        }
        return problems
    }

    private static func list(_ partitions: [Int32]) -> String {
        partitions.map(String.init).joined(separator: ", ")
    }

    private static func seconds(_ ms: Int64) -> String {
        String(format: "%.1f", Double(ms) / 1000)
    }
}
