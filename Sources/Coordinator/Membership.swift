/// Worker leases: who is in the cluster and whether it is alive. A pure state machine in the style
/// of SWIM's `Instance`: every input carries `now` (coordinator ms) and returns directives for the
/// shell (`CoordinatorNode`) to log, persist and act on; it never reads a clock.
///
/// A member is `up` after registering; `suspect` once it has missed two heartbeats
/// (`now - lastHeartbeat > 2 * heartbeatIntervalMs`), which changes nothing but the status page;
/// `down` after `leaseTimeoutMs` of silence (`now - lastHeartbeat >= leaseTimeoutMs`), when its
/// partitions are reassigned. A down member is not live and its heartbeats are answered
/// `unknown_worker`; if it registers again with the same id it starts over with a fresh lease and
/// no partitions (they moved when it went down). Down members are forgotten after
/// `forgetDownAfterMs`.
///
/// A member that leaves gracefully (`leave`) is `leaving`: its heartbeats still renew its lease
/// (it must stay alive to hand its partitions off) but it is not live for planning, so it gets
/// no new partitions; it never turns suspect, goes down if its lease expires (it was killed while
/// leaving), and is removed by `remove` once it owns nothing.
///
/// After a coordinator restart, workers known from the database are `restored` with a lease that
/// starts at the restart: they keep their partitions (no churn) if they register again within the
/// lease, and go down like any silent worker otherwise. Until then their heartbeats are answered
/// `unknown_worker`, so they re-register and receive the current settings.
public struct Membership: Sendable {
    public var heartbeatIntervalMs: Int64
    public var leaseTimeoutMs: Int64
    public var forgetDownAfterMs: Int64
    private var byID: [String: Member] = [:]

    public init(heartbeatIntervalMs: Int64, leaseTimeoutMs: Int64, forgetDownAfterMs: Int64 = 600_000) {
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.leaseTimeoutMs = leaseTimeoutMs
        self.forgetDownAfterMs = forgetDownAfterMs
    }

    public struct Member: Sendable, Equatable {
        public var id: String
        public var address: String
        public var pid: Int32
        public var state: MemberState
        public var registeredAtMs: Int64
        /// Last heartbeat or registration (or the restart, for a restored member).
        public var lastHeartbeatMs: Int64
        /// When it went down; nil unless `state == .down`.
        public var downAtMs: Int64?
    }

    /// Lease state; raw values are shown in `/v1/status` and stored in SQLite.
    public enum MemberState: String, Sendable, Equatable, CaseIterable {
        /// Known from the database after a coordinator restart; has not registered again yet.
        case restored
        case up
        case suspect
        /// Left gracefully and is handing its partitions off; not a candidate for new ones.
        case leaving
        case down
    }

    public enum Directive: Sendable, Equatable {
        /// A new member, or one that registers again after being declared down: partitions may move to it.
        case joined(String)
        /// A live (or restored) member registered again: fresh lease, it keeps its partitions.
        case reregistered(String)
        case suspect(String, silentMs: Int64)
        /// A suspect member heartbeated again.
        case recovered(String)
        /// The lease expired: its partitions must move.
        case down(String, silentMs: Int64)
        /// A down member was dropped from the table.
        case forgotten(String)
        /// A member started to leave gracefully: its partitions are handed off.
        case leaving(String)
        /// A leaving member that owns nothing any more was removed.
        case left(String)
    }

    public enum HeartbeatVerdict: Sendable, Equatable {
        /// The lease is renewed; `recovered` is set when the member was suspect.
        case renewed(recovered: Bool)
        /// Not a live member (never registered, down, forgotten, or restored): it must register.
        case unknownWorker
    }

    // MARK: - Inputs

    /// Adds a member known from the database after a restart; its lease starts at `now`.
    /// A member that was `leaving` stays leaving (its heartbeats are accepted, so it finishes
    /// handing off without registering again). Ignored when the id is already present.
    public mutating func restore(id: String, address: String, pid: Int32, registeredAtMs: Int64, now: Int64, leaving: Bool = false) {
        guard byID[id] == nil else { return }
        byID[id] = Member(id: id, address: address, pid: pid, state: leaving ? .leaving : .restored, registeredAtMs: registeredAtMs, lastHeartbeatMs: now)
    }

    public mutating func register(id: String, address: String, pid: Int32, now: Int64) -> Directive {
        let previous = byID[id]
        let rejoining = previous == nil || previous?.state == .down
        byID[id] = Member(
            id: id, address: address, pid: pid, state: .up,
            registeredAtMs: rejoining ? now : (previous?.registeredAtMs ?? now), lastHeartbeatMs: now)
        return rejoining ? .joined(id) : .reregistered(id)
    }

    public mutating func heartbeat(id: String, now: Int64) -> HeartbeatVerdict {
        guard var member = byID[id], member.state == .up || member.state == .suspect || member.state == .leaving else {
            return .unknownWorker
        }
        let recovered = member.state == .suspect
        if member.state != .leaving { member.state = .up }
        member.lastHeartbeatMs = max(member.lastHeartbeatMs, now)
        byID[id] = member
        return .renewed(recovered: recovered)
    }

    /// A live (up, suspect or restored) member starts to leave gracefully, with a fresh lease.
    /// Nil when it is already leaving (nothing changes) or is not a live member (unknown or down:
    /// its partitions have moved already).
    public mutating func leave(id: String, now: Int64) -> Directive? {
        guard var member = byID[id], member.state != .down, member.state != .leaving else { return nil }
        member.state = .leaving
        member.lastHeartbeatMs = max(member.lastHeartbeatMs, now)
        byID[id] = member
        return .leaving(id)
    }

    /// Removes a leaving member (it handed everything off). Nil unless it is leaving.
    public mutating func remove(id: String) -> Directive? {
        guard byID[id]?.state == .leaving else { return nil }
        byID[id] = nil
        return .left(id)
    }

    /// Expires leases. Call often (the node does every ~250 ms); directives come in member id order.
    public mutating func tick(now: Int64) -> [Directive] {
        var directives: [Directive] = []
        for id in byID.keys.sorted() {
            guard var member = byID[id] else { continue }
            let silent = now - member.lastHeartbeatMs
            switch member.state {
            case .restored, .up, .suspect, .leaving:
                if silent >= leaseTimeoutMs {
                    member.state = .down
                    member.downAtMs = now
                    directives.append(.down(id, silentMs: silent))
                } else if member.state == .up && silent > 2 * heartbeatIntervalMs {
                    member.state = .suspect
                    directives.append(.suspect(id, silentMs: silent))
                }
                byID[id] = member
            case .down:
                if now - (member.downAtMs ?? now) >= forgetDownAfterMs {
                    byID[id] = nil
                    directives.append(.forgotten(id))
                }
            }
        }
        return directives
    }

    // MARK: - Queries

    /// Members whose lease has not expired and that are not leaving (up, suspect or restored):
    /// the ones that may be given partitions.
    public var liveIDs: Set<String> {
        Set(byID.values.filter { $0.state != .down && $0.state != .leaving }.map(\.id))
    }

    /// Members handing their partitions off before they exit: still alive, owning what they have
    /// not released yet, but given nothing new.
    public var leavingIDs: Set<String> {
        Set(byID.values.filter { $0.state == .leaving }.map(\.id))
    }

    public subscript(id: String) -> Member? { byID[id] }

    /// Every member still in the table, down ones included, by id.
    public var members: [Member] {
        byID.values.sorted { $0.id < $1.id }
    }
}
