import Foundation
import Protocol

// MARK: - Graceful leave

extension WorkerNode {
    /// Leaves the cluster without losing or repeating work (SIGTERM/SIGINT):
    ///
    /// 1. `/rpc/deregister`: the coordinator marks this worker leaving and starts handing off each
    ///    partition it owns (to the other workers, or to nobody when it is the last one).
    /// 2. Heartbeats go on, so the lease holds; their answers stop listing the partitions being
    ///    handed off, and `reconcile` stops each with a final checkpoint and a release, which the
    ///    sender delivers in order behind the partition's reports.
    /// 3. Once nothing runs and the outbox is delivered, a second deregister tells the coordinator
    ///    the worker is gone ("left").
    ///
    /// Bounded by `exitDeadline` (`Options.drainTimeout`). When the coordinator is unreachable for a
    /// whole lease, or no longer knows this worker (declared down: its partitions have moved), the
    /// worker stops everything without writing: the lease expiry moves the partitions, and their
    /// next owners replay from the last checkpoints.
    func leave(settings: WorkerSettings) async {
        let interval = Duration.milliseconds(settings.heartbeatIntervalMs)
        let deadline = exitDeadline ?? .now + options.drainTimeout
        logger.info("leaving the cluster: handing partitions off", metadata: ["partitions": "\(started.keys.sorted())"])
        var deregistered = false
        while ContinuousClock.now < deadline && !Task.isCancelled {
            if fenced {
                logger.warning("leaving without handing off: the lease expired, so the coordinator moves the partitions itself")
                return
            }
            if !deregistered {
                switch await deregister(interval: interval) {
                case .accepted:
                    deregistered = true
                case .unknown(let reason):
                    logger.warning("the coordinator does not know this worker (\(reason)); stopping without writing")
                    stopAllWithoutWriting()
                    return
                case .unreachable(let error):
                    if leaseExpired {
                        selfFence("cannot reach the coordinator to leave (\(error))")
                        return
                    }
                    logger.warning("cannot deregister yet: \(error); retrying")
                }
            }
            if deregistered {
                switch await heartbeat(settings: settings) {
                case .renewed, .failed:
                    break
                case .unknownWorker:
                    // The coordinator restarted and restored this worker as not registered: say again that it leaves.
                    deregistered = false
                    continue
                }
                // Nothing runs or waits here; the coordinator agreeing that nothing is owned any more
                // (every release arrived) makes it forget this worker.
                if await drained(within: interval), case .accepted(let owned) = await deregister(interval: interval), owned.isEmpty {
                    logger.info("left the cluster: every partition handed off")
                    return
                }
            } else {
                try? await Task.sleep(for: interval)
            }
        }
        logger.warning("could not hand every partition off within \(options.drainTimeout); exiting anyway", metadata: [
            "partitions": "\(started.keys.sorted())", "queued": "\(outbox.count)",
        ])
    }

    enum DeregisterOutcome {
        /// With the partitions the coordinator still counts as this worker's.
        case accepted([Int32])
        case unknown(String)
        case unreachable(any Error)
    }

    private func deregister(interval: Duration) async -> DeregisterOutcome {
        do {
            let response: DeregisterResponse = try await client.call(
                RPCPath.deregister, DeregisterRequest(workerID: options.workerID), timeout: interval * 2)
            return response.accepted ? .accepted(response.partitions) : .unknown(response.reason ?? "unknown worker")
        } catch {
            return .unreachable(error)
        }
    }

    /// Waits up to `timeout` for the moment nothing runs here any more and everything queued is
    /// delivered; true if it came.
    private func drained(within timeout: Duration) async -> Bool {
        let until = ContinuousClock.now + timeout
        while true {
            let idle = started.isEmpty && (loop?.running.isEmpty ?? true) && outbox.isIdle
            if idle { return true }
            if ContinuousClock.now >= until { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}
