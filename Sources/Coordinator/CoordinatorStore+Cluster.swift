import GRDB

/// A worker as last persisted: what the coordinator restores after a restart.
public struct StoredWorker: Sendable, Equatable {
    public var id: String
    public var address: String
    public var pid: Int32
    /// A `Membership.MemberState` raw value.
    public var state: String
    public var registeredAtMs: Int64

    public init(id: String, address: String, pid: Int32, state: String, registeredAtMs: Int64) {
        self.id = id
        self.address = address
        self.pid = pid
        self.state = state
        self.registeredAtMs = registeredAtMs
    }
}

/// One line of a worker's history: "joined", "reregistered", "suspect", "recovered", "leaving",
/// "left", "down", "forgotten".
public struct WorkerEvent: Sendable, Equatable {
    public var workerID: String
    public var event: String
    public var detail: String
    public var atMs: Int64
}

// MARK: - Control plane (synchronous, see the type's documentation)

extension CoordinatorStore {
    /// Every stored assignment, by partition.
    public func loadAssignments() throws -> [PartitionAssignment] {
        try pool.read { db in
            try Row.fetchAll(db, sql: #"SELECT * FROM assignments ORDER BY "partition""#).map(Self.assignment(from:))
        }
    }

    /// Writes `rows` (upserts) and appends `changes` to the assignment history, in one transaction.
    public func saveAssignments(_ rows: [PartitionAssignment], changes: [AssignmentChange], now: Int64) throws {
        try pool.write { db in
            let upsert = try db.cachedStatement(sql: """
                INSERT INTO assignments ("partition", owner, epoch, state, target, releasing_since_ms, updated_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT("partition") DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch,
                    state = excluded.state, target = excluded.target,
                    releasing_since_ms = excluded.releasing_since_ms, updated_at_ms = excluded.updated_at_ms
                """)
            for row in rows {
                try upsert.execute(arguments: [row.partition, row.owner, row.epoch, row.state.rawValue, row.target, row.releasingSinceMs, now])
            }
            let history = try db.cachedStatement(sql: """
                INSERT INTO assignment_events ("partition", kind, from_worker, to_worker, epoch, at_ms) VALUES (?, ?, ?, ?, ?, ?)
                """)
            for change in changes {
                try history.execute(arguments: [change.partition, change.kind.rawValue, change.from, change.to, change.epoch, now])
            }
        }
    }

    /// Every worker not forgotten, by id.
    public func loadWorkers() throws -> [StoredWorker] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM workers ORDER BY id").map { row in
                StoredWorker(id: row["id"], address: row["address"], pid: row["pid"], state: row["state"], registeredAtMs: row["registered_at_ms"])
            }
        }
    }

    /// Upserts `worker` and appends `event` (e.g. "joined", "down") to its history, in one transaction.
    public func saveWorker(_ worker: StoredWorker, event: String, detail: String = "", now: Int64) throws {
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO workers (id, address, pid, state, registered_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET address = excluded.address, pid = excluded.pid, state = excluded.state,
                    registered_at_ms = excluded.registered_at_ms, updated_at_ms = excluded.updated_at_ms
                """, arguments: [worker.id, worker.address, worker.pid, worker.state, worker.registeredAtMs, now])
            try Self.appendWorkerEvent(db, workerID: worker.id, event: event, detail: detail, now: now)
        }
    }

    /// Removes a worker (forgotten after going down, or `"left"` gracefully); its history stays
    /// (until retention), ending with `event`.
    public func forgetWorker(id: String, event: String = "forgotten", now: Int64) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM workers WHERE id = ?", arguments: [id])
            try Self.appendWorkerEvent(db, workerID: id, event: event, detail: "", now: now)
        }
    }

    /// When each owned partition's owner was given it under the current epoch: the earliest
    /// assignment event naming that owner and epoch. Partitions without such an event are absent.
    public func loadAssignmentTimes() throws -> [Int32: Int64] {
        try pool.read { db in
            var times: [Int32: Int64] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT e."partition" AS p, MIN(e.at_ms) AS at FROM assignment_events e
                JOIN assignments a ON a."partition" = e."partition" AND a.epoch = e.epoch AND a.owner = e.to_worker
                GROUP BY e."partition"
                """) {
                times[row["p"]] = row["at"]
            }
            return times
        }
    }

    /// The newest `limit` worker events, newest first.
    public func workerEvents(limit: Int = 100) async throws -> [WorkerEvent] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM worker_events ORDER BY seq DESC LIMIT ?", arguments: [limit]).map { row in
                WorkerEvent(workerID: row["worker_id"], event: row["event"], detail: row["detail"], atMs: row["at_ms"])
            }
        }
    }

    private static func appendWorkerEvent(_ db: Database, workerID: String, event: String, detail: String, now: Int64) throws {
        try db.execute(
            sql: "INSERT INTO worker_events (worker_id, event, detail, at_ms) VALUES (?, ?, ?, ?)",
            arguments: [workerID, event, detail, now])
    }

    static func assignment(from row: Row) throws -> PartitionAssignment {
        let stateName: String = row["state"]
        guard let state = AssignmentState(rawValue: stateName) else {
            throw CoordinatorStoreError("assignments row for partition \(row["partition"] as Int32) has unknown state \"\(stateName)\"; was the database written by a newer Vigil?")
        }
        return PartitionAssignment(
            partition: row["partition"], owner: row["owner"], epoch: row["epoch"], state: state,
            target: row["target"], releasingSinceMs: row["releasing_since_ms"])
    }
}
