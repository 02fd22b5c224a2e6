import Detection
import GRDB
import Protocol

/// How many rows the data tables hold (one snapshot).
public struct StoreCounts: Sendable, Equatable {
    public var anomalies: Int
    public var windows: Int
    public var lateEvents: Int
    public var malformedRecords: Int
    public var lostRanges: Int
    public var checkpoints: Int

    public init(anomalies: Int = 0, windows: Int = 0, lateEvents: Int = 0, malformedRecords: Int = 0, lostRanges: Int = 0, checkpoints: Int = 0) {
        self.anomalies = anomalies
        self.windows = windows
        self.lateEvents = lateEvents
        self.malformedRecords = malformedRecords
        self.lostRanges = lostRanges
        self.checkpoints = checkpoints
    }
}

// MARK: - Data plane: queries and acknowledgements

extension CoordinatorStore {
    /// Anomalies matching `query`, newest first (see `AnomalyQuery`).
    public func anomalies(_ query: AnomalyQuery) async throws -> [StoredAnomaly] {
        var conditions: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        if let since = query.sinceMs {
            conditions.append("detected_at_ms >= ?")
            arguments.append(since)
        }
        if let symbol = query.symbol {
            conditions.append("symbol = ?")
            arguments.append(symbol)
        }
        if let kind = query.kind {
            conditions.append("kind = ?")
            arguments.append(kind.rawValue)
        }
        if let minimum = query.minSeverity {
            let allowed = Severity.allCases.filter { $0 >= minimum }
            conditions.append("severity IN (\(allowed.map { _ in "?" }.joined(separator: ", ")))")
            arguments.append(contentsOf: allowed.map(\.rawValue))
        }
        if let acknowledged = query.acknowledged {
            conditions.append("acknowledged = ?")
            arguments.append(acknowledged)
        }
        arguments.append(max(query.limit, 1))
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT * FROM anomalies \(filter) ORDER BY detected_at_ms DESC, window_start_ms DESC, id LIMIT ?"
        let statementArguments = StatementArguments(arguments)
        return try await pool.read { db in
            try Row.fetchAll(db, sql: sql, arguments: statementArguments).map(Self.storedAnomaly(from:))
        }
    }

    /// The anomaly with this id, or nil.
    public func anomaly(id: String) async throws -> StoredAnomaly? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM anomalies WHERE id = ?", arguments: [id]).map(Self.storedAnomaly(from:))
        }
    }

    /// Marks an anomaly acknowledged by `by` at `now` and returns it; nil when no such id.
    /// Acknowledging twice keeps the first acknowledgement (who and when).
    public func acknowledge(id: String, by: String, now: Int64) async throws -> StoredAnomaly? {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE anomalies SET acknowledged = 1, acknowledged_at = ?, acknowledged_by = ?
                WHERE id = ? AND acknowledged = 0
                """, arguments: [now, by, id])
            return try Row.fetchOne(db, sql: "SELECT * FROM anomalies WHERE id = ?", arguments: [id]).map(Self.storedAnomaly(from:))
        }
    }

    public func anomalyCount() async throws -> Int64 {
        try await pool.read { db in try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM anomalies") ?? 0 }
    }

    /// Row counts of the data tables, all from one consistent snapshot.
    public func counts() async throws -> StoreCounts {
        try await pool.read { db in
            func count(_ table: String) throws -> Int {
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0
            }
            return StoreCounts(
                anomalies: try count("anomalies"), windows: try count("windows"), lateEvents: try count("late_events"),
                malformedRecords: try count("malformed_records"), lostRanges: try count("lost_ranges"),
                checkpoints: try count("checkpoints"))
        }
    }

    /// Closed-window summaries of `symbol` starting at or after `sinceStartMs`, oldest first (for charts).
    public func windows(symbol: String, sinceStartMs: Int64 = .min, limit: Int = 10_000) async throws -> [WindowSummary] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM windows WHERE symbol = ? AND start_ms >= ? ORDER BY start_ms LIMIT ?
                """, arguments: [symbol, sinceStartMs, limit]).map { row in
                WindowSummary(
                    symbol: row["symbol"], startMs: row["start_ms"], endMs: row["end_ms"], count: row["count"],
                    baseVolume: Self.double(row, "base_volume"), quoteVolume: Self.double(row, "quote_volume"),
                    vwap: Self.double(row, "vwap"), open: Self.double(row, "open"), high: Self.double(row, "high"),
                    low: Self.double(row, "low"), close: Self.double(row, "close"), logReturn: Self.double(row, "log_return"),
                    volatility: Self.double(row, "volatility"), takerBuyRatio: Self.double(row, "taker_buy_ratio"),
                    largestTrade: Self.double(row, "largest_trade"), longestGapMs: row["longest_gap_ms"])
            }
        }
    }

    /// Late events of `partition`, by offset.
    public func lateEvents(partition: Int32, limit: Int = 10_000) async throws -> [LateEvent] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: #"SELECT * FROM late_events WHERE "partition" = ? ORDER BY "offset" LIMIT ?"#, arguments: [partition, limit]).map { row in
                LateEvent(partition: row["partition"], offset: row["offset"], symbol: row["symbol"], eventTimeMs: row["event_time_ms"], watermarkMs: row["watermark_ms"])
            }
        }
    }

    /// Malformed records of `partition`, by offset.
    public func malformedRecords(partition: Int32, limit: Int = 10_000) async throws -> [MalformedRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: #"SELECT * FROM malformed_records WHERE "partition" = ? ORDER BY "offset" LIMIT ?"#, arguments: [partition, limit]).map { row in
                MalformedRecord(partition: row["partition"], offset: row["offset"], reason: row["reason"], excerpt: row["excerpt"])
            }
        }
    }

    /// Every recorded lost offset range, by partition then start.
    public func loadLostRanges() throws -> [Int32: [OffsetRange]] {
        try pool.read { db in
            var result: [Int32: [OffsetRange]] = [:]
            for row in try Row.fetchAll(db, sql: #"SELECT * FROM lost_ranges ORDER BY "partition", from_offset, to_offset"#) {
                result[row["partition"], default: []].append(OffsetRange(from: row["from_offset"], to: row["to_offset"]))
            }
            return result
        }
    }

    // MARK: Helpers

    static func storedAnomaly(from row: Row) throws -> StoredAnomaly {
        let id: String = row["id"]
        func value<T: RawRepresentable>(_ column: String, as type: T.Type) throws -> T where T.RawValue == String {
            let raw: String = row[column]
            guard let value = T(rawValue: raw) else {
                throw CoordinatorStoreError("anomaly \(id) has unknown \(column) \"\(raw)\"; was the database written by a newer Vigil?")
            }
            return value
        }
        let anomaly = Anomaly(
            id: id, symbol: row["symbol"], kind: try value("kind", as: AnomalyKind.self),
            severity: try value("severity", as: Severity.self), quality: try value("quality", as: Quality.self),
            windowStartMs: row["window_start_ms"], windowEndMs: row["window_end_ms"], detectedAtMs: row["detected_at_ms"],
            value: double(row, "value"), expected: double(row, "expected"),
            scores: try decodeScores(row["scores"], id: id), description: row["description"], suppressed: row["suppressed"],
            partition: row["partition"], offset: row["offset"])
        return StoredAnomaly(
            anomaly: anomaly, storedAtMs: row["stored_at_ms"], acknowledged: row["acknowledged"],
            acknowledgedAtMs: row["acknowledged_at"], acknowledgedBy: row["acknowledged_by"])
    }

    /// Reads a nullable REAL column; NULL (how SQLite stores NaN) reads as NaN.
    static func double(_ row: Row, _ column: String) -> Double {
        (row[column] as Double?) ?? .nan
    }
}
