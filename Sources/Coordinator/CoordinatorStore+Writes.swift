import Detection
import Foundation
import GRDB
import Protocol

/// The latest checkpoint of a partition, without its state (for status and restarts).
public struct CheckpointSummary: Sendable, Equatable {
    public var partition: Int32
    /// Per partition, increasing by one with each accepted checkpoint.
    public var checkpointID: Int64
    public var epoch: Int64
    public var workerID: String
    public var nextOffset: Int64
    public var watermarkMs: Int64
    public var takenAtMs: Int64
    /// Size of the state in bytes.
    public var size: Int
    public var durationMs: Double
}

/// A stored checkpoint with its state, as a new owner restores it.
public struct StoredCheckpoint: Sendable, Equatable {
    public var summary: CheckpointSummary
    public var state: Data
}

// MARK: - Data plane: fenced writes

extension CoordinatorStore {
    /// Stores a report's anomalies, window summaries, late events, malformed records and lost ranges
    /// in ONE transaction, if `report.workerID` owns `report.partition` under `report.epoch`
    /// (checked in the same transaction); otherwise nothing is written.
    ///
    /// Anomalies are `INSERT ... ON CONFLICT(id) DO NOTHING`: a replayed id changes nothing, not even
    /// its acknowledgement. The accepted value is the anomalies that were new, in report order, so
    /// alerts fire on the first insert only. A replay after a failover repeats reports, so every
    /// other part is keyed too: a window summary is upserted by (symbol, start) (a replay writes the
    /// same values; `stored_at_ms` keeps the first store, for retention); late events and
    /// malformed records are inserted once by (partition, offset); a lost range is stored only for
    /// the offsets no stored range of the partition covers yet. With `alerts`, the new
    /// anomalies it admits are queued in the alert outbox in the same transaction.
    public func storeReport(_ report: ReportRequest, now: Int64, alerts: AlertPolicy? = nil) async throws -> Fenced<[Anomaly]> {
        let scores = try report.anomalies.map(Self.encodeScores)
        return try await pool.write { db in
            if let rejection = try Self.fence(db, partition: report.partition, worker: report.workerID, epoch: report.epoch) {
                return .rejected(rejection)
            }
            var inserted: [Anomaly] = []
            let insertAnomaly = try db.cachedStatement(sql: """
                INSERT INTO anomalies (id, symbol, kind, severity, quality, window_start_ms, window_end_ms,
                    detected_at_ms, value, expected, scores, description, suppressed, "partition", "offset", stored_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO NOTHING
                """)
            for (anomaly, scores) in zip(report.anomalies, scores) {
                try insertAnomaly.execute(arguments: [
                    anomaly.id, anomaly.symbol, anomaly.kind.rawValue, anomaly.severity.rawValue, anomaly.quality.rawValue,
                    anomaly.windowStartMs, anomaly.windowEndMs, anomaly.detectedAtMs, Self.real(anomaly.value),
                    Self.real(anomaly.expected), scores, anomaly.description, anomaly.suppressed, anomaly.partition,
                    anomaly.offset, now,
                ])
                if db.changesCount > 0 { inserted.append(anomaly) }
            }
            let insertWindow = try db.cachedStatement(sql: """
                INSERT INTO windows (symbol, start_ms, end_ms, count, base_volume, quote_volume, vwap, open, high, low,
                    close, log_return, volatility, taker_buy_ratio, largest_trade, longest_gap_ms, "partition", stored_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(symbol, start_ms) DO UPDATE SET end_ms = excluded.end_ms, count = excluded.count,
                    base_volume = excluded.base_volume, quote_volume = excluded.quote_volume, vwap = excluded.vwap,
                    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
                    log_return = excluded.log_return, volatility = excluded.volatility,
                    taker_buy_ratio = excluded.taker_buy_ratio, largest_trade = excluded.largest_trade,
                    longest_gap_ms = excluded.longest_gap_ms, "partition" = excluded."partition"
                """)
            for w in report.windows {
                try insertWindow.execute(arguments: [
                    w.symbol, w.startMs, w.endMs, w.count, Self.real(w.baseVolume), Self.real(w.quoteVolume), Self.real(w.vwap),
                    Self.real(w.open), Self.real(w.high), Self.real(w.low), Self.real(w.close), Self.real(w.logReturn),
                    Self.real(w.volatility), Self.real(w.takerBuyRatio), Self.real(w.largestTrade), w.longestGapMs,
                    report.partition, now,
                ])
            }
            let insertLate = try db.cachedStatement(sql: """
                INSERT INTO late_events ("partition", "offset", symbol, event_time_ms, watermark_ms, stored_at_ms)
                VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """)
            for late in report.lateEvents {
                try insertLate.execute(arguments: [late.partition, late.offset, late.symbol, late.eventTimeMs, late.watermarkMs, now])
            }
            let insertMalformed = try db.cachedStatement(sql: """
                INSERT INTO malformed_records ("partition", "offset", reason, excerpt, stored_at_ms)
                VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """)
            for record in report.malformed {
                try insertMalformed.execute(arguments: [record.partition, record.offset, record.reason, record.excerpt, now])
            }
            try Self.insertLost(db, partition: report.partition, ranges: report.lost, worker: report.workerID, epoch: report.epoch, now: now)
            if let alerts {
                try AlertOutbox.enqueue(db, inserted, policy: alerts, now: now)
            }
            return .accepted(inserted)
        }
    }

    /// Records offset ranges lost to retention (as a heartbeat reports them), once each.
    /// Not fenced: a loss is a fact about the log, whoever saw it.
    public func recordLostRanges(partition: Int32, ranges: [OffsetRange], worker: String, epoch: Int64, now: Int64) async throws {
        guard !ranges.isEmpty else { return }
        try await pool.write { db in
            try Self.insertLost(db, partition: partition, ranges: ranges, worker: worker, epoch: epoch, now: now)
        }
    }

    /// Replaces the partition's checkpoint (next offset and state, in one transaction) if
    /// `request.workerID` owns the partition under `request.epoch`; only the latest is kept.
    /// The accepted value carries the new checkpoint id (previous + 1).
    public func storeCheckpoint(_ request: CheckpointRequest, now: Int64) async throws -> Fenced<CheckpointSummary> {
        try await pool.write { db in
            if let rejection = try Self.fence(db, partition: request.partition, worker: request.workerID, epoch: request.epoch) {
                return .rejected(rejection)
            }
            let previous = try Int64.fetchOne(db, sql: #"SELECT checkpoint_id FROM checkpoints WHERE "partition" = ?"#, arguments: [request.partition]) ?? 0
            let summary = CheckpointSummary(
                partition: request.partition, checkpointID: previous + 1, epoch: request.epoch, workerID: request.workerID,
                nextOffset: request.nextOffset, watermarkMs: request.watermarkMs, takenAtMs: now,
                size: request.state.count, durationMs: request.durationMs)
            try db.execute(sql: """
                INSERT INTO checkpoints ("partition", checkpoint_id, epoch, worker_id, next_offset, state, watermark_ms,
                    taken_at_ms, size, duration_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT("partition") DO UPDATE SET checkpoint_id = excluded.checkpoint_id, epoch = excluded.epoch,
                    worker_id = excluded.worker_id, next_offset = excluded.next_offset, state = excluded.state,
                    watermark_ms = excluded.watermark_ms, taken_at_ms = excluded.taken_at_ms, size = excluded.size,
                    duration_ms = excluded.duration_ms
                """, arguments: [
                    summary.partition, summary.checkpointID, summary.epoch, summary.workerID, summary.nextOffset,
                    request.state, summary.watermarkMs, summary.takenAtMs, summary.size, summary.durationMs,
                ])
            return .accepted(summary)
        }
    }

    /// The partition's latest checkpoint (nil if it never had one), for `worker` starting it under
    /// `epoch`; rejected unless that is the partition's current owner and epoch, so a task that was
    /// assigned and then moved again does not start.
    public func fetchCheckpoint(partition: Int32, worker: String, epoch: Int64) async throws -> Fenced<StoredCheckpoint?> {
        try await pool.read { db in
            if let rejection = try Self.fence(db, partition: partition, worker: worker, epoch: epoch) {
                return .rejected(rejection)
            }
            let row = try Row.fetchOne(db, sql: #"SELECT * FROM checkpoints WHERE "partition" = ?"#, arguments: [partition])
            return .accepted(row.map { StoredCheckpoint(summary: Self.checkpointSummary(from: $0), state: $0["state"]) })
        }
    }

    /// The latest checkpoint of every partition that has one, without the state.
    public func loadCheckpointSummaries() throws -> [CheckpointSummary] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT "partition", checkpoint_id, epoch, worker_id, next_offset, watermark_ms, taken_at_ms, size, duration_ms
                FROM checkpoints ORDER BY "partition"
                """).map(Self.checkpointSummary(from:))
        }
    }

    // MARK: Helpers

    /// Nil when `worker` may write for `partition` under `epoch`; else why not.
    static func fence(_ db: Database, partition: Int32, worker: String, epoch: Int64) throws -> FencingRejection? {
        let row = try Row.fetchOne(db, sql: #"SELECT * FROM assignments WHERE "partition" = ?"#, arguments: [partition])
        let current = try row.map(assignment(from:))
        if let current, current.permitsWrite(by: worker, epoch: epoch) { return nil }
        return FencingRejection(partition: partition, worker: worker, epoch: epoch, current: current)
    }

    /// Stores the parts of `ranges` not covered by the partition's stored ranges (a replay, or a
    /// new owner restoring an older checkpoint, reports a loss again, possibly with other bounds).
    private static func insertLost(_ db: Database, partition: Int32, ranges: [OffsetRange], worker: String, epoch: Int64, now: Int64) throws {
        guard !ranges.isEmpty else { return }
        var known = try Row.fetchAll(db, sql: #"SELECT from_offset, to_offset FROM lost_ranges WHERE "partition" = ?"#, arguments: [partition])
            .map { OffsetRange(from: $0["from_offset"], to: $0["to_offset"]) }
        let statement = try db.cachedStatement(sql: """
            INSERT INTO lost_ranges ("partition", from_offset, to_offset, worker_id, epoch, reported_at_ms)
            VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """)
        for range in ranges {
            for piece in OffsetRanges.subtracting(range, known) {
                try statement.execute(arguments: [partition, piece.from, piece.to, worker, epoch, now])
                known.append(piece)
            }
        }
    }

    static func checkpointSummary(from row: Row) -> CheckpointSummary {
        CheckpointSummary(
            partition: row["partition"], checkpointID: row["checkpoint_id"], epoch: row["epoch"], workerID: row["worker_id"],
            nextOffset: row["next_offset"], watermarkMs: row["watermark_ms"], takenAtMs: row["taken_at_ms"],
            size: row["size"], durationMs: row["duration_ms"])
    }

    /// SQLite stores NaN as NULL; columns holding doubles are nullable and read NULL back as NaN.
    static func real(_ value: Double) -> Double? {
        value.isNaN ? nil : value
    }

    static func encodeScores(_ anomaly: Anomaly) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(anomaly.scores), as: UTF8.self)
    }

    static func decodeScores(_ json: String, id: String) throws -> [String: Double] {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            return try decoder.decode([String: Double].self, from: Data(json.utf8))
        } catch {
            throw CoordinatorStoreError("anomaly \(id) has unreadable scores JSON \(json): \(error)")
        }
    }
}
