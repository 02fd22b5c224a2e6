import Detection
import GRDB
import Protocol

// MARK: - Queries for the operator's view (status page, dashboard)

extension CoordinatorStore {
    /// Late events stored at or after `sinceMs` (coordinator time), by partition; partitions with
    /// none are absent.
    public func lateEventCounts(storedSince sinceMs: Int64) async throws -> [Int32: Int64] {
        try await pool.read { db in
            var counts: [Int32: Int64] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT "partition", COUNT(*) AS n FROM late_events WHERE stored_at_ms >= ? GROUP BY "partition"
                """, arguments: [sinceMs]) {
                counts[row["partition"]] = row["n"]
            }
            return counts
        }
    }

    /// Anomalies stored at or after `now - windowMs`: alertable ones by severity, suppressed ones,
    /// and the `top` symbols with the most alertable ones.
    public func anomalyDigest(windowMs: Int64, now: Int64, top: Int = 5) async throws -> AnomalyDigest {
        let since = now - windowMs
        return try await pool.read { db in
            var bySeverity: [String: Int64] = [:]
            var suppressed: Int64 = 0
            for row in try Row.fetchAll(db, sql: """
                SELECT severity, suppressed, COUNT(*) AS n FROM anomalies WHERE stored_at_ms >= ? GROUP BY severity, suppressed
                """, arguments: [since]) {
                let n: Int64 = row["n"]
                if row["suppressed"] as Bool {
                    suppressed += n
                } else {
                    bySeverity[row["severity"], default: 0] += n
                }
            }
            let topSymbols = try Row.fetchAll(db, sql: """
                SELECT symbol, COUNT(*) AS n FROM anomalies WHERE stored_at_ms >= ? AND suppressed = 0
                GROUP BY symbol ORDER BY n DESC, symbol LIMIT ?
                """, arguments: [since, top]).map { AnomalyDigest.SymbolCount(symbol: $0["symbol"], count: $0["n"]) }
            return AnomalyDigest(windowMs: windowMs, bySeverity: bySeverity, suppressed: suppressed, topSymbols: topSymbols)
        }
    }

    /// Every symbol with stored windows, by symbol: how many, the newest one's end and close, and
    /// the symbol's stored anomalies.
    public func symbolSummaries() async throws -> [SymbolSummary] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT w.symbol AS symbol, w.n AS n, last.end_ms AS end_ms, last.close AS close,
                    (SELECT COUNT(*) FROM anomalies a WHERE a.symbol = w.symbol) AS anomalies
                FROM (SELECT symbol, COUNT(*) AS n, MAX(start_ms) AS last_start FROM windows GROUP BY symbol) AS w
                JOIN windows AS last ON last.symbol = w.symbol AND last.start_ms = w.last_start
                ORDER BY w.symbol
                """).map { row in
                SymbolSummary(symbol: row["symbol"], windows: row["n"], lastWindowEndMs: row["end_ms"], lastClose: row["close"], anomalies: row["anomalies"])
            }
        }
    }

    /// The newest `limit` windows of `symbol` (starting at or after `sinceStartMs`), oldest first.
    public func recentWindows(symbol: String, limit: Int, sinceStartMs: Int64 = .min) async throws -> [WindowSummary] {
        let newest = try await pool.read { db in
            try Int64.fetchAll(db, sql: """
                SELECT start_ms FROM windows WHERE symbol = ? AND start_ms >= ? ORDER BY start_ms DESC LIMIT ?
                """, arguments: [symbol, sinceStartMs, max(1, limit)])
        }
        guard let first = newest.last else { return [] }
        return try await windows(symbol: symbol, sinceStartMs: first, limit: newest.count)
    }
}
