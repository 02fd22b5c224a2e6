import Detection
import Foundation
import GRDB

/// One alert waiting in (or done with) the outbox.
public struct QueuedAlert: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Not delivered yet; tried again at `nextAttemptAtMs`.
        case pending
        /// The webhook accepted it.
        case delivered
        /// The webhook refused it for good (a 4xx other than 408/429); never retried.
        case failed
    }

    /// Insert order: alerts are delivered in this order.
    public var seq: Int64
    public var anomaly: Anomaly
    public var state: State
    /// Delivery attempts so far.
    public var attempts: Int
    public var nextAttemptAtMs: Int64
    public var lastError: String?
    public var createdAtMs: Int64
    public var deliveredAtMs: Int64?
}

/// The alert outbox table: alerts are queued in the transaction that first stores their anomaly
/// (`enqueue`, called by `CoordinatorStore.storeReport`), and the `AlertDispatcher` delivers
/// them. One row per anomaly id: a replay cannot queue an alert twice.
enum AlertOutbox {
    static let schema = """
        CREATE TABLE alert_outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            anomaly_id TEXT NOT NULL UNIQUE,
            anomaly TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at_ms INTEGER NOT NULL,
            last_error TEXT,
            created_at_ms INTEGER NOT NULL,
            delivered_at_ms INTEGER
        );
        CREATE INDEX alert_outbox_due ON alert_outbox(state, next_attempt_at_ms);
        CREATE INDEX alert_outbox_by_created ON alert_outbox(created_at_ms);
        """

    /// Queues the anomalies `policy` admits, inside the caller's transaction. `anomalies` must be
    /// the ones this transaction inserted for the first time.
    static func enqueue(_ db: Database, _ anomalies: [Anomaly], policy: AlertPolicy, now: Int64) throws {
        let admitted = anomalies.filter(policy.admits)
        guard !admitted.isEmpty else { return }
        let statement = try db.cachedStatement(sql: """
            INSERT INTO alert_outbox (anomaly_id, anomaly, state, attempts, next_attempt_at_ms, created_at_ms)
            VALUES (?, ?, 'pending', 0, ?, ?) ON CONFLICT(anomaly_id) DO NOTHING
            """)
        for anomaly in admitted {
            try statement.execute(arguments: [anomaly.id, try encode(anomaly), now, now])
        }
    }

    static func encode(_ anomaly: Anomaly) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(anomaly), as: UTF8.self)
    }

    static func decode(_ json: String, seq: Int64) throws -> Anomaly {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            return try decoder.decode(Anomaly.self, from: Data(json.utf8))
        } catch {
            throw CoordinatorStoreError("alert \(seq) in the outbox has an unreadable anomaly: \(error); delete the row or restore the database")
        }
    }

    static func queuedAlert(from row: Row) throws -> QueuedAlert {
        let seq: Int64 = row["seq"]
        let stateText: String = row["state"]
        guard let state = QueuedAlert.State(rawValue: stateText) else {
            throw CoordinatorStoreError("alert \(seq) in the outbox has unknown state \"\(stateText)\"; was the database written by a newer Vigil?")
        }
        return QueuedAlert(
            seq: seq, anomaly: try decode(row["anomaly"], seq: seq), state: state, attempts: row["attempts"],
            nextAttemptAtMs: row["next_attempt_at_ms"], lastError: row["last_error"], createdAtMs: row["created_at_ms"],
            deliveredAtMs: row["delivered_at_ms"])
    }
}

extension CoordinatorStore {
    /// Pending alerts due at `now`, in queue order.
    /// The pending alerts at the head of the queue, in queue order. The dispatcher stops at the
    /// first one that is not due yet, so a retried alert holds back the ones queued after it.
    public func pendingAlerts(limit: Int = 100) async throws -> [QueuedAlert] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM alert_outbox WHERE state = 'pending' ORDER BY seq LIMIT ?
                """, arguments: [limit]).map(AlertOutbox.queuedAlert(from:))
        }
    }

    /// Every alert in the outbox, in queue order (for tests and diagnosis).
    public func queuedAlerts() async throws -> [QueuedAlert] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM alert_outbox ORDER BY seq").map(AlertOutbox.queuedAlert(from:))
        }
    }

    public func pendingAlertCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM alert_outbox WHERE state = 'pending'") ?? 0 }
    }

    /// When the alert at the head of the queue is due (alerts go out in order, so nothing is sent
    /// before it); nil when none is pending.
    public func nextAlertDue() async throws -> Int64? {
        try await pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT next_attempt_at_ms FROM alert_outbox WHERE state = 'pending' ORDER BY seq LIMIT 1")
        }
    }

    func markAlertDelivered(seq: Int64, now: Int64) async throws {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE alert_outbox SET state = 'delivered', attempts = attempts + 1, delivered_at_ms = ?, last_error = NULL WHERE seq = ?
                """, arguments: [now, seq])
        }
    }

    func markAlertRetry(seq: Int64, nextAttemptAtMs: Int64, error: String) async throws {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at_ms = ?, last_error = ? WHERE seq = ?
                """, arguments: [nextAttemptAtMs, error, seq])
        }
    }

    func markAlertFailed(seq: Int64, error: String) async throws {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE alert_outbox SET state = 'failed', attempts = attempts + 1, last_error = ? WHERE seq = ?
                """, arguments: [error, seq])
        }
    }

    /// Deletes delivered and failed alerts queued before `beforeMs`; pending ones are kept
    /// whatever their age. Returns how many were deleted.
    func pruneAlerts(queuedBefore beforeMs: Int64) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM alert_outbox WHERE state != 'pending' AND created_at_ms < ?", arguments: [beforeMs])
            return db.changesCount
        }
    }
}
