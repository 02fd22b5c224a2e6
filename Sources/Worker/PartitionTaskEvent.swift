import Protocol

/// A partition task starting or stopping in this worker process, as `WorkerMetrics` needs to know
/// it: a partition's stats are cumulative across owners (restored from checkpoints), so the
/// counters of this process count only what a task added between its start and its stop.
///
/// A task is identified by its partition and epoch: a partition that leaves and comes back runs
/// under a new epoch, from a new baseline.
public enum PartitionTaskEvent: Sendable, Equatable {
    /// A task began with these stats (restored from a checkpoint, or zero): what they count was
    /// consumed before this task, by another process or an earlier task.
    case started(PartitionProgress)
    /// A task stopped (handoff, release, lease loss, rejection, exit) with these final stats:
    /// what it consumed after the last heartbeat is counted from here, as later heartbeats no
    /// longer list it.
    case stopped(PartitionProgress)

    /// The task's stats carried by the event.
    public var progress: PartitionProgress {
        switch self {
        case .started(let progress), .stopped(let progress): progress
        }
    }
}
