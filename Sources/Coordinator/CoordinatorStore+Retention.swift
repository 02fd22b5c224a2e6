import GRDB

/// How long the coordinator keeps data, by the time it was stored (coordinator clock), not by
/// event time: a replay of last year's trades is kept as long as live data.
public struct RetentionPolicy: Sendable, Equatable {
    /// Window summaries, late events and malformed records (default 1 day).
    public var windowsMs: Int64
    /// Anomalies (acknowledged or not), lost ranges and worker/assignment history (default 30 days).
    public var anomaliesMs: Int64

    public init(windowsMs: Int64 = 86_400_000, anomaliesMs: Int64 = 30 * 86_400_000) {
        self.windowsMs = windowsMs
        self.anomaliesMs = anomaliesMs
    }
}

/// Rows deleted by one retention pass.
public struct RetentionResult: Sendable, Equatable {
    public var windows = 0
    public var lateEvents = 0
    public var malformedRecords = 0
    public var anomalies = 0
    public var history = 0

    public var total: Int { windows + lateEvents + malformedRecords + anomalies + history }
}

extension CoordinatorStore {
    /// Deletes what `policy` no longer keeps at `now`: rows stored strictly before `now - age`.
    /// Assignments, workers and checkpoints are never deleted by retention.
    public func applyRetention(_ policy: RetentionPolicy, now: Int64) async throws -> RetentionResult {
        let windowsBefore = now - policy.windowsMs
        let anomaliesBefore = now - policy.anomaliesMs
        return try await pool.write { db in
            var result = RetentionResult()
            func delete(_ sql: String, _ before: Int64) throws -> Int {
                try db.execute(sql: sql, arguments: [before])
                return db.changesCount
            }
            result.windows = try delete("DELETE FROM windows WHERE stored_at_ms < ?", windowsBefore)
            result.lateEvents = try delete("DELETE FROM late_events WHERE stored_at_ms < ?", windowsBefore)
            result.malformedRecords = try delete("DELETE FROM malformed_records WHERE stored_at_ms < ?", windowsBefore)
            result.anomalies = try delete("DELETE FROM anomalies WHERE stored_at_ms < ?", anomaliesBefore)
            result.history = try delete("DELETE FROM lost_ranges WHERE reported_at_ms < ?", anomaliesBefore)
                + delete("DELETE FROM worker_events WHERE at_ms < ?", anomaliesBefore)
                + delete("DELETE FROM assignment_events WHERE at_ms < ?", anomaliesBefore)
            return result
        }
    }
}
