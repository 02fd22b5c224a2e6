import Detection
import Logging
import Protocol

// MARK: - Worker RPCs

extension CoordinatorNode {
    /// `POST /rpc/register`: a worker joins (or comes back). It gets the cluster settings; its
    /// partitions come with its heartbeats. A worker that was declared down starts over with no
    /// partitions; one that is still live (or restored after a coordinator restart) keeps its own.
    public func register(_ request: RegisterRequest) throws -> RegisterResponse {
        guard request.protocolVersion == ProtocolVersion.current else {
            throw CoordinatorError(.badRequest, "worker \(request.workerID) speaks protocol version \(request.protocolVersion) but this coordinator speaks \(ProtocolVersion.current); run the same Vigil version on workers and coordinator")
        }
        guard !request.workerID.isEmpty else {
            throw CoordinatorError(.badRequest, "workerID is empty; a worker must send a non-empty id, unique per process")
        }
        let now = clock()
        noteRegistration(request)
        let directive = membership.register(id: request.workerID, address: request.address, pid: request.pid, now: now)
        if case .joined = directive {
            workerLoad[request.workerID] = nil
        }
        apply(directive, now: now)
        rebalance(now: now)
        return RegisterResponse(workerID: request.workerID, settings: config.settings)
    }

    /// `POST /rpc/heartbeat`: renews the lease, records per-partition progress (only for partitions
    /// the worker owns under the listed epoch) and answers the complete set of partitions it should
    /// run now (partitions it is handing off are not in it: it must stop them, checkpoint and
    /// release). An unknown, down or restored worker is answered `unknown_worker` with no
    /// partitions: it must register again.
    public func heartbeat(_ request: HeartbeatRequest) async -> HeartbeatResponse {
        let now = clock()
        let worker = request.workerID
        switch membership.heartbeat(id: worker, now: now) {
        case .unknownWorker:
            logger.debug("heartbeat from an unknown worker; asking it to register", metadata: ["worker.id": "\(worker)"])
            return HeartbeatResponse(status: .unknownWorker, assignments: [])
        case .renewed(let recovered):
            if recovered { apply(.recovered(worker), now: now) }
        }
        workerLoad[worker] = WorkerLoad(rssBytes: request.rssBytes, cpuSeconds: request.cpuSeconds)

        var newlyLost: [(progress: PartitionProgress, ranges: [OffsetRange])] = []
        for item in request.partitions {
            guard let row = assignment(item.partition), row.permitsWrite(by: worker, epoch: item.epoch) else { continue }
            progress[item.partition] = item
            let fresh = mergeLost(partition: item.partition, item.lost)
            if !fresh.isEmpty { newlyLost.append((item, fresh)) }
        }
        noteHeartbeat(request, now: now)

        let response = HeartbeatResponse(status: .ok, assignments: AssignmentPlan.active(assignments, for: worker))
        announced.formUnion(response.assignments)

        for (item, ranges) in newlyLost {
            await persistLost(partition: item.partition, ranges: ranges, worker: worker, epoch: item.epoch, now: now)
        }
        return response
    }

    /// `POST /rpc/report`: stores the report in one transaction if the worker owns the partition
    /// under the report's epoch (else `accepted: false` with the reason). `inserted` counts the
    /// anomalies that were new; only those reach `insertedAnomalies()`.
    public func report(_ request: ReportRequest) async throws -> ReportResponse {
        let now = clock()
        switch try await storage({ try await store.storeReport(request, now: now, alerts: config.alerts) }) {
        case .rejected(let rejection):
            logRejection("report", rejection)
            noteReportRejected()
            return ReportResponse(accepted: false, inserted: 0, reason: rejection.description)
        case .accepted(let inserted):
            let fresh = mergeLost(partition: request.partition, request.lost)
            logLost(partition: request.partition, fresh, worker: request.workerID)
            publish(inserted)
            noteReport(request, inserted: inserted, now: now)
            logger.debug("report stored", metadata: [
                "worker.id": "\(request.workerID)", "partition": "\(request.partition)", "epoch": "\(request.epoch)",
                "anomalies": "\(request.anomalies.count)", "inserted": "\(inserted.count)", "windows": "\(request.windows.count)",
            ])
            return ReportResponse(accepted: true, inserted: inserted.count)
        }
    }

    /// `POST /rpc/checkpoint`: replaces the partition's checkpoint if the worker owns it under the
    /// checkpoint's epoch; `checkpointID` is 0 when rejected.
    public func checkpoint(_ request: CheckpointRequest) async throws -> CheckpointResponse {
        let now = clock()
        switch try await storage({ try await store.storeCheckpoint(request, now: now) }) {
        case .rejected(let rejection):
            logRejection("checkpoint", rejection)
            noteCheckpointRejected()
            return CheckpointResponse(accepted: false, checkpointID: 0, reason: rejection.description)
        case .accepted(let summary):
            checkpoints[summary.partition] = summary
            noteCheckpoint(summary)
            logger.debug("checkpoint stored", metadata: [
                "worker.id": "\(request.workerID)", "partition": "\(request.partition)", "epoch": "\(request.epoch)",
                "checkpoint": "\(summary.checkpointID)", "next_offset": "\(summary.nextOffset)", "bytes": "\(summary.size)",
            ])
            return CheckpointResponse(accepted: true, checkpointID: summary.checkpointID)
        }
    }

    /// `POST /rpc/checkpoint/fetch`: where a new owner starts: the latest checkpoint, or none (start at
    /// the configured start offset). Refused unless the worker owns the partition under that epoch.
    public func fetchCheckpoint(_ request: FetchCheckpointRequest) async throws -> FetchCheckpointResponse {
        switch try await storage({ try await store.fetchCheckpoint(partition: request.partition, worker: request.workerID, epoch: request.epoch) }) {
        case .rejected(let rejection):
            logRejection("checkpoint fetch", rejection)
            return FetchCheckpointResponse(accepted: false)
        case .accepted(nil):
            return FetchCheckpointResponse(accepted: true)
        case .accepted(let stored?):
            return FetchCheckpointResponse(
                accepted: true, checkpointID: stored.summary.checkpointID, nextOffset: stored.summary.nextOffset, state: stored.state)
        }
    }

    /// `POST /rpc/release`: the owner of a partition being handed off stopped it and stored its final
    /// checkpoint; the next owner gets it with `epoch + 1`. Refused (`accepted: false`) from a
    /// non-owner, under a stale epoch, or for a partition that is not being handed off.
    public func release(_ request: ReleaseRequest) throws -> ReleaseResponse {
        let now = clock()
        guard let plan = planner.release(
            assignments, partition: request.partition, by: request.workerID, epoch: request.epoch,
            live: membership.liveIDs, leaving: membership.leavingIDs, now: now, announced: announced)
        else {
            let current = assignment(request.partition)
            let reason = current.map { row in
                row.permitsWrite(by: request.workerID, epoch: request.epoch)
                    ? "partition \(request.partition) is not being handed off; keep running it"
                    : row.fencingReason(worker: request.workerID, epoch: request.epoch)
            } ?? "partition \(request.partition) is not a partition of this cluster"
            logger.info("release refused", metadata: [
                "worker.id": "\(request.workerID)", "partition": "\(request.partition)", "epoch": "\(request.epoch)", "reason": "\(reason)",
            ])
            return ReleaseResponse(accepted: false)
        }
        guard apply(plan, now: now) else {
            throw CoordinatorError(.storage, "cannot persist the release of partition \(request.partition); retry the release")
        }
        return ReleaseResponse(accepted: true)
    }

    /// `POST /rpc/deregister`: a worker leaves gracefully (see `DeregisterRequest`). The first call
    /// marks it leaving and starts handing off what it owns; once it owns nothing, a call removes
    /// it ("left"). Answers the partitions it still owns; `accepted: false` when it is unknown or
    /// down (its partitions have moved already).
    public func deregister(_ request: DeregisterRequest) -> DeregisterResponse {
        let now = clock()
        let worker = request.workerID
        guard let member = membership[worker], member.state != .down else {
            return DeregisterResponse(
                accepted: false, partitions: [],
                reason: "worker \(worker) is not a member (never registered, declared down, or left): its partitions have moved; stop them without writing")
        }
        if let directive = membership.leave(id: worker, now: now) {
            apply(directive, now: now)
            rebalance(now: now)
        }
        let owned = assignments.filter { $0.owner == worker }.map(\.partition)
        if owned.isEmpty, let directive = membership.remove(id: worker) {
            apply(directive, now: now)
        }
        return DeregisterResponse(accepted: true, partitions: owned)
    }

    // MARK: Helpers

    func assignment(_ partition: Int32) -> PartitionAssignment? {
        guard partition >= 0, Int(partition) < assignments.count else { return nil }
        return assignments[Int(partition)]
    }

    /// Adds `ranges` to the partition's known losses (kept as a union of disjoint ranges); returns
    /// the offsets not known before, so a loss reported again after a replay is logged once.
    private func mergeLost(partition: Int32, _ ranges: [OffsetRange]) -> [OffsetRange] {
        var known = lost[partition] ?? []
        var fresh: [OffsetRange] = []
        for range in ranges {
            let pieces = OffsetRanges.subtracting(range, known)
            fresh.append(contentsOf: pieces)
            known.append(contentsOf: pieces)
        }
        guard !fresh.isEmpty else { return [] }
        lost[partition] = OffsetRanges.union(known)
        return fresh
    }

    private func persistLost(partition: Int32, ranges: [OffsetRange], worker: String, epoch: Int64, now: Int64) async {
        logLost(partition: partition, ranges, worker: worker)
        do {
            try await store.recordLostRanges(partition: partition, ranges: ranges, worker: worker, epoch: epoch, now: now)
        } catch {
            logger.error("cannot persist lost offset ranges; they are shown until the coordinator restarts", metadata: [
                "partition": "\(partition)", "error": "\(error)",
            ])
        }
    }

    private func logLost(partition: Int32, _ ranges: [OffsetRange], worker: String) {
        for range in ranges {
            logger.info("partition lost offsets to retention", metadata: [
                "partition": "\(partition)", "from": "\(range.from)", "to": "\(range.to)", "worker.id": "\(worker)",
            ])
        }
    }

    private func logRejection(_ what: String, _ rejection: FencingRejection) {
        logger.info("rejected \(what) from a stale epoch or a non-owner", metadata: [
            "worker.id": "\(rejection.worker)", "partition": "\(rejection.partition)", "epoch": "\(rejection.epoch)",
            "owner": "\(rejection.current?.owner ?? "-")", "current.epoch": "\(rejection.current?.epoch ?? -1)",
        ])
    }

    /// Runs a store call, turning its failure into a `CoordinatorError` (HTTP 500) that says what failed.
    func storage<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError(.storage, "coordinator database (\(store.path)) failed: \(error); the call can be retried")
        }
    }
}
