import Foundation
import GRDB

/// The coordinator's durable state in one SQLite file (WAL, `synchronous=NORMAL`): workers and
/// their history, assignments and epochs, the latest checkpoint of each partition, anomalies,
/// closed-window summaries, late events, malformed records and offset ranges lost to retention.
///
/// Two kinds of call, on purpose:
/// - **control plane** (assignments, workers) is *synchronous*: the node persists an assignment
///   change before any caller can observe it, so the database never lags the epochs the node
///   hands out, and fencing checks against the database are exact. These writes are rare and tiny.
/// - **data plane** (reports, checkpoints, queries) is `async` and runs on GRDB's queues, so a large
///   checkpoint does not block the node. Fencing for reports and checkpoints is checked *inside*
///   their transaction against the `assignments` table: a write from a stale epoch or a non-owner
///   is rejected atomically, whatever else is running.
///
/// Safe to use from any task. Open one store per file; `close()` it before reopening the file.
public final class CoordinatorStore: Sendable {
    /// The database file.
    public let path: String
    let pool: DatabasePool

    /// Opens (creating if needed) the database at `path` and migrates it to the current schema.
    /// The directory must exist. Throws `CoordinatorStoreError` saying what to fix.
    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.label = "vigil.coordinator"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw CoordinatorStoreError("cannot open the coordinator database at \(path): \(error); check that the directory exists and is writable")
        }
        do {
            try Self.migrator.migrate(pool)
        } catch {
            throw CoordinatorStoreError("cannot migrate the coordinator database at \(path): \(error); was it written by a newer Vigil?")
        }
    }

    /// Closes the database. Later calls on this store fail.
    public func close() throws {
        try pool.close()
    }

    /// The schema. Add a new migration for any change; never edit a shipped one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: Schema.v1)
        }
        migrator.registerMigration("alert_outbox") { db in
            try db.execute(sql: AlertOutbox.schema)
        }
        return migrator
    }
}

/// A storage failure, with what to do about it.
public struct CoordinatorStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Why a write (report, checkpoint, checkpoint fetch) was refused by fencing: the sender is not the
/// partition's owner under its current epoch. The worker must stop that task.
public struct FencingRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public var partition: Int32
    public var worker: String
    public var epoch: Int64
    /// The partition's assignment at the time of the write; nil when the partition is unknown.
    public var current: PartitionAssignment?

    public var description: String {
        guard let current else {
            return "partition \(partition) is not a partition of this cluster; stop the task"
        }
        return current.fencingReason(worker: worker, epoch: epoch)
    }
}

/// Outcome of a fenced write.
public enum Fenced<Value: Sendable>: Sendable {
    case accepted(Value)
    case rejected(FencingRejection)
}

extension Fenced: Equatable where Value: Equatable {}

enum Schema {
    // "partition" and "offset" are SQL keywords: always quoted.
    static let v1 = """
        CREATE TABLE workers (
            id TEXT PRIMARY KEY NOT NULL,
            address TEXT NOT NULL,
            pid INTEGER NOT NULL,
            state TEXT NOT NULL,
            registered_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL
        );
        CREATE TABLE worker_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            worker_id TEXT NOT NULL,
            event TEXT NOT NULL,
            detail TEXT NOT NULL,
            at_ms INTEGER NOT NULL
        );
        CREATE INDEX worker_events_by_time ON worker_events(at_ms);

        CREATE TABLE assignments (
            "partition" INTEGER PRIMARY KEY NOT NULL,
            owner TEXT,
            epoch INTEGER NOT NULL,
            state TEXT NOT NULL,
            target TEXT,
            releasing_since_ms INTEGER,
            updated_at_ms INTEGER NOT NULL
        );
        CREATE TABLE assignment_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            "partition" INTEGER NOT NULL,
            kind TEXT NOT NULL,
            from_worker TEXT,
            to_worker TEXT,
            epoch INTEGER NOT NULL,
            at_ms INTEGER NOT NULL
        );
        CREATE INDEX assignment_events_by_time ON assignment_events(at_ms);

        CREATE TABLE checkpoints (
            "partition" INTEGER PRIMARY KEY NOT NULL,
            checkpoint_id INTEGER NOT NULL,
            epoch INTEGER NOT NULL,
            worker_id TEXT NOT NULL,
            next_offset INTEGER NOT NULL,
            state BLOB NOT NULL,
            watermark_ms INTEGER NOT NULL,
            taken_at_ms INTEGER NOT NULL,
            size INTEGER NOT NULL,
            duration_ms REAL NOT NULL
        );

        CREATE TABLE anomalies (
            id TEXT PRIMARY KEY NOT NULL,
            symbol TEXT NOT NULL,
            kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            quality TEXT NOT NULL,
            window_start_ms INTEGER NOT NULL,
            window_end_ms INTEGER NOT NULL,
            detected_at_ms INTEGER NOT NULL,
            value REAL,
            expected REAL,
            scores TEXT NOT NULL,
            description TEXT NOT NULL,
            suppressed INTEGER NOT NULL,
            "partition" INTEGER NOT NULL,
            "offset" INTEGER NOT NULL,
            stored_at_ms INTEGER NOT NULL,
            acknowledged INTEGER NOT NULL DEFAULT 0,
            acknowledged_at INTEGER,
            acknowledged_by TEXT
        );
        CREATE INDEX anomalies_by_detected ON anomalies(detected_at_ms);
        CREATE INDEX anomalies_by_symbol ON anomalies(symbol, detected_at_ms);
        CREATE INDEX anomalies_by_stored ON anomalies(stored_at_ms);

        CREATE TABLE windows (
            symbol TEXT NOT NULL,
            start_ms INTEGER NOT NULL,
            end_ms INTEGER NOT NULL,
            count INTEGER NOT NULL,
            base_volume REAL,
            quote_volume REAL,
            vwap REAL,
            open REAL,
            high REAL,
            low REAL,
            close REAL,
            log_return REAL,
            volatility REAL,
            taker_buy_ratio REAL,
            largest_trade REAL,
            longest_gap_ms INTEGER NOT NULL,
            "partition" INTEGER NOT NULL,
            stored_at_ms INTEGER NOT NULL,
            PRIMARY KEY (symbol, start_ms)
        ) WITHOUT ROWID;
        CREATE INDEX windows_by_stored ON windows(stored_at_ms);

        CREATE TABLE late_events (
            "partition" INTEGER NOT NULL,
            "offset" INTEGER NOT NULL,
            symbol TEXT NOT NULL,
            event_time_ms INTEGER NOT NULL,
            watermark_ms INTEGER NOT NULL,
            stored_at_ms INTEGER NOT NULL,
            PRIMARY KEY ("partition", "offset")
        ) WITHOUT ROWID;
        CREATE INDEX late_events_by_stored ON late_events(stored_at_ms);

        CREATE TABLE malformed_records (
            "partition" INTEGER NOT NULL,
            "offset" INTEGER NOT NULL,
            reason TEXT NOT NULL,
            excerpt TEXT NOT NULL,
            stored_at_ms INTEGER NOT NULL,
            PRIMARY KEY ("partition", "offset")
        ) WITHOUT ROWID;
        CREATE INDEX malformed_records_by_stored ON malformed_records(stored_at_ms);

        CREATE TABLE lost_ranges (
            "partition" INTEGER NOT NULL,
            from_offset INTEGER NOT NULL,
            to_offset INTEGER NOT NULL,
            worker_id TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            reported_at_ms INTEGER NOT NULL,
            PRIMARY KEY ("partition", from_offset, to_offset)
        ) WITHOUT ROWID;
        """
}
