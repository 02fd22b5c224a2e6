import Coordinator
import Detection
import Foundation
import Protocol
import XCTest

/// A worker leaving on SIGTERM: membership, planner and node hand its partitions off (final
/// checkpoint, release, epoch + 1 for the next owner) instead of refusing its releases.
final class GracefulLeavePlannerTests: XCTestCase {
    let planner = AssignmentPlanner(partitionCount: 12, handoffTimeoutMs: 15_000)

    func testALeavingOwnerHandsEverythingOffToLiveWorkersAndGetsNothingNew() throws {
        let three = planner.plan([], live: ["a", "b", "c"], now: 0).assignments
        let aHeld = three.filter { $0.owner == "a" }.map(\.partition)
        XCTAssertEqual(aHeld.count, 4)

        let leaving = planner.plan(three, live: ["b", "c"], leaving: ["a"], now: 1_000)
        XCTAssertEqual(leaving.changes.map(\.partition), aHeld)
        XCTAssertTrue(leaving.changes.allSatisfy { $0.kind == .handoffStarted && $0.from == "a" && $0.epoch == 1 }, "\(leaving.changes)")
        XCTAssertEqual(leaving.assignments(for: "a"), [], "a is told to stop everything")
        for p in aHeld {
            let row = leaving.assignments[Int(p)]
            XCTAssertEqual(row.state, .releasing)
            XCTAssertTrue(row.permitsWrite(by: "a", epoch: 1), "a's final checkpoint of \(p) must be accepted")
            XCTAssertNotNil(row.target)
            XCTAssertNotEqual(row.target, "a")
        }
        // Planning again (a still leaving) changes nothing; a never becomes a target.
        XCTAssertEqual(planner.plan(leaving.assignments, live: ["b", "c"], leaving: ["a"], now: 2_000).changes, [])
        // A worker listed both live and leaving is leaving.
        XCTAssertEqual(planner.plan(three, live: ["a", "b", "c"], leaving: ["a"], now: 1_000), leaving)

        var current = leaving.assignments
        for p in aHeld {
            let target = try XCTUnwrap(current[Int(p)].target)
            let released = try XCTUnwrap(planner.release(current, partition: p, by: "a", epoch: 1, live: ["b", "c"], leaving: ["a"], now: 3_000))
            XCTAssertEqual(released.changes.first, AssignmentChange(kind: .released, partition: p, from: "a", to: target, epoch: 2))
            current = released.assignments
        }
        XCTAssertFalse(current.contains { $0.owner == "a" })
        XCTAssertEqual(Dictionary(grouping: current, by: { $0.owner! }).mapValues(\.count), ["b": 6, "c": 6])
    }

    func testTheLastWorkerLeavingHandsOffToNobodyAndTheNextWorkerResumesWithANewEpoch() throws {
        let alone = planner.plan([], live: ["a"], now: 0).assignments
        let leaving = planner.plan(alone, live: [], leaving: ["a"], now: 1_000)
        XCTAssertEqual(leaving.changes.count, 12)
        XCTAssertTrue(leaving.changes.allSatisfy { $0.kind == .handoffStarted && $0.to == nil })
        XCTAssertTrue(leaving.assignments.allSatisfy { $0.state == .releasing && $0.target == nil && $0.permitsWrite(by: "a", epoch: 1) })

        let released = try XCTUnwrap(planner.release(leaving.assignments, partition: 0, by: "a", epoch: 1, live: [], leaving: ["a"], now: 2_000))
        XCTAssertEqual(released.changes, [AssignmentChange(kind: .released, partition: 0, from: "a", to: nil, epoch: 1)])
        XCTAssertEqual(released.assignments[0], PartitionAssignment(partition: 0, owner: nil, epoch: 1, state: .unassigned))
        XCTAssertFalse(released.assignments[0].permitsWrite(by: "a", epoch: 1))

        // A worker joins before the rest are released: it gets partition 0 at once, and the others
        // are handed off to it (still through a's release, so a's final checkpoints count).
        let joined = planner.plan(released.assignments, live: ["b"], leaving: ["a"], now: 3_000)
        XCTAssertEqual(joined.assignments[0], PartitionAssignment(partition: 0, owner: "b", epoch: 2, state: .active))
        XCTAssertTrue(joined.assignments.dropFirst().allSatisfy { $0.state == .releasing && $0.target == "b" && $0.owner == "a" })
        XCTAssertEqual(Set(joined.changes.dropFirst().map(\.kind)), [.handoffRetargeted])
    }

    func testAHandoffToNobodyThatTimesOutLeavesThePartitionUnassigned() {
        let alone = planner.plan([], live: ["a"], now: 0).assignments
        let leaving = planner.plan(alone, live: [], leaving: ["a"], now: 1_000).assignments
        XCTAssertEqual(planner.plan(leaving, live: [], leaving: ["a"], now: 15_999).changes, [])
        let late = planner.plan(leaving, live: [], leaving: ["a"], now: 16_000)
        XCTAssertTrue(late.changes.allSatisfy { $0.kind == .unassigned && $0.from == "a" })
        XCTAssertTrue(late.assignments.allSatisfy { $0.state == .unassigned && !$0.permitsWrite(by: "a", epoch: 1) })
    }

    func testALeavingOwnerThatDiesIsTreatedAsDown() {
        let two = planner.plan([], live: ["a", "b"], now: 0).assignments
        let leaving = planner.plan(two, live: ["b"], leaving: ["a"], now: 1_000).assignments
        let dead = planner.plan(leaving, live: ["b"], now: 2_000)
        XCTAssertEqual(dead.changes.count, 6)
        XCTAssertTrue(dead.changes.allSatisfy { $0.kind == .ownerDown && $0.from == "a" && $0.to == "b" && $0.epoch == 2 })
    }

    func testMovesOwnerNamesTheChangesThatStartANewEpoch() {
        let moving: [AssignmentChange.Kind] = [.assigned, .ownerDown, .released, .neverStarted, .handoffTimedOut]
        for kind in [AssignmentChange.Kind.assigned, .ownerDown, .handoffStarted, .handoffRetargeted, .handoffCancelled, .released, .neverStarted, .handoffTimedOut, .unassigned] {
            XCTAssertEqual(AssignmentChange(kind: kind, partition: 0, from: nil, to: "x", epoch: 1).movesOwner, moving.contains(kind), "\(kind)")
        }
    }
}

final class GracefulLeaveMembershipTests: XCTestCase {
    func testALeavingMemberKeepsItsLeaseButIsNotLiveAndIsRemovedWhenItLeft() {
        var members = Membership(heartbeatIntervalMs: 1_000, leaseTimeoutMs: 6_000)
        _ = members.register(id: "a", address: "h", pid: 1, now: 0)
        _ = members.register(id: "b", address: "h", pid: 2, now: 0)
        XCTAssertEqual(members.leave(id: "a", now: 1_000), .leaving("a"))
        XCTAssertNil(members.leave(id: "a", now: 1_500), "leaving twice changes nothing")
        XCTAssertEqual(members.liveIDs, ["b"])
        XCTAssertEqual(members.leavingIDs, ["a"])

        // Heartbeats keep it (never suspect, still leaving) ...
        XCTAssertEqual(members.heartbeat(id: "a", now: 1_500), .renewed(recovered: false))
        XCTAssertEqual(members.tick(now: 5_000), [.suspect("b", silentMs: 5_000)], "b turns suspect; a, silent for 3.5 s, does not")
        XCTAssertEqual(members["a"]?.state, .leaving)
        // ... until it is removed.
        XCTAssertNil(members.remove(id: "b"), "only a leaving member can be removed")
        XCTAssertEqual(members.remove(id: "a"), .left("a"))
        XCTAssertNil(members["a"])
        XCTAssertEqual(members.heartbeat(id: "a", now: 9_500), .unknownWorker)
    }

    func testALeavingMemberThatFallsSilentGoesDown() {
        var members = Membership(heartbeatIntervalMs: 1_000, leaseTimeoutMs: 6_000)
        _ = members.register(id: "a", address: "h", pid: 1, now: 0)
        _ = members.leave(id: "a", now: 1_000)
        XCTAssertEqual(members.tick(now: 6_999), [])
        XCTAssertEqual(members.tick(now: 7_000), [.down("a", silentMs: 6_000)])
        XCTAssertNil(members.leave(id: "a", now: 7_500), "a down member cannot leave: its partitions moved")
    }

    func testRestoredMembersCanLeaveAndLeavingOnesAreRestoredLeaving() {
        var members = Membership(heartbeatIntervalMs: 1_000, leaseTimeoutMs: 6_000)
        members.restore(id: "a", address: "h", pid: 1, registeredAtMs: 0, now: 100)
        members.restore(id: "b", address: "h", pid: 2, registeredAtMs: 0, now: 100, leaving: true)
        XCTAssertEqual(members["b"]?.state, .leaving)
        XCTAssertEqual(members.heartbeat(id: "b", now: 200), .renewed(recovered: false), "a restored leaving member finishes without registering")
        XCTAssertEqual(members.leave(id: "a", now: 300), .leaving("a"))
        XCTAssertEqual(members.leavingIDs, ["a", "b"])
        XCTAssertEqual(members.liveIDs, [])
    }
}

final class GracefulLeaveNodeTests: CoordinatorTestCase {
    let start: Int64 = 1_723_161_600_000

    func testALeavingWorkerHandsOffThroughFinalCheckpointsAndReleasesThenLeaves() async throws {
        let clock = ManualClock(start)
        let node = try makeNode(store: try openStore(), clock: clock)
        _ = try await node.registerWorker("w1")
        _ = try await node.registerWorker("w2")
        let w1 = try await node.beat("w1").assignments
        let w2 = try await node.beat("w2").assignments
        XCTAssertEqual(w1.count, 6)
        XCTAssertEqual(w2.count, 6)

        clock.advance(by: 1_000)
        let leave: DeregisterResponse = try await node.post(RPCPath.deregister, DeregisterRequest(workerID: "w1"))
        XCTAssertTrue(leave.accepted)
        XCTAssertEqual(leave.partitions, w1.map(\.partition))
        XCTAssertTrue(logs.contains("worker leaving: handing its partitions off"))
        var status: ClusterStatus = try await node.get(RPCPath.status)
        XCTAssertEqual(status.workers.first { $0.id == "w1" }?.state, "leaving")
        let w1Told = try await node.beat("w1", running: w1).assignments
        XCTAssertEqual(w1Told, [], "w1 must stop everything")
        let w2Told = try await node.beat("w2", running: w2).assignments
        XCTAssertEqual(w2Told, w2, "nothing moves before w1 releases")

        // w1's final checkpoints are accepted (it still owns them while releasing), then its releases.
        for item in w1 {
            let checkpoint: CheckpointResponse = try await node.post(RPCPath.checkpoint, CheckpointRequest(
                workerID: "w1", partition: item.partition, epoch: item.epoch, nextOffset: 700, state: Data("final".utf8),
                watermarkMs: start, durationMs: 1.5))
            XCTAssertTrue(checkpoint.accepted, "final checkpoint of \(item.partition)")
            clock.advance(by: 10)
            let released: ReleaseResponse = try await node.post(RPCPath.release, ReleaseRequest(workerID: "w1", partition: item.partition, epoch: item.epoch))
            XCTAssertTrue(released.accepted, "release of \(item.partition)")
        }
        XCTAssertFalse(logs.contains("release refused"))
        XCTAssertTrue(logs.contains("partition moved"))
        XCTAssertTrue(logs.all.contains { $0.contains("partition moved") && $0.contains("reason=released") && $0.contains("at.ms=") })

        let w2All = try await node.beat("w2", running: w2).assignments
        XCTAssertEqual(w2All.count, 12)
        XCTAssertEqual(Set(w2All.filter { w1.map(\.partition).contains($0.partition) }.map(\.epoch)), [w1[0].epoch + 1])
        let fetched: FetchCheckpointResponse = try await node.post(RPCPath.fetchCheckpoint, FetchCheckpointRequest(
            workerID: "w2", partition: w1[0].partition, epoch: w1[0].epoch + 1))
        XCTAssertEqual(fetched.nextOffset, 700, "the next owner restores the leaver's final checkpoint")

        // Status: the new epoch, when it began, and the checkpoint facts.
        status = try await node.get(RPCPath.status)
        let moved = try XCTUnwrap(status.partitions.first { $0.partition == w1[0].partition })
        XCTAssertEqual(moved.owner, "w2")
        XCTAssertEqual(moved.epoch, w1[0].epoch + 1)
        XCTAssertEqual(moved.assignedAtMs, start + 1_010)
        XCTAssertEqual(moved.checkpointID, 1)
        XCTAssertEqual(moved.checkpointEpoch, w1[0].epoch)
        XCTAssertEqual(moved.checkpointDurationMs, 1.5)
        XCTAssertEqual(moved.checkpointBytes, 5)
        XCTAssertEqual(moved.checkpointAgeMs, 60, "stored at +1000, status read at +1060")

        // Owning nothing, w1 says it is gone: it is forgotten; saying it again is refused.
        let gone: DeregisterResponse = try await node.post(RPCPath.deregister, DeregisterRequest(workerID: "w1"))
        XCTAssertEqual(gone.accepted, true)
        XCTAssertEqual(gone.partitions, [])
        XCTAssertTrue(logs.contains("worker left: every partition handed off"))
        status = try await node.get(RPCPath.status)
        XCTAssertEqual(status.workers.map(\.id), ["w2"])
        XCTAssertEqual(status.problems, [])
        let again: DeregisterResponse = try await node.post(RPCPath.deregister, DeregisterRequest(workerID: "w1"))
        XCTAssertFalse(again.accepted)
        XCTAssertNotNil(again.reason)
    }

    func testTheLastWorkerLeavingStoresItsFinalCheckpointsAndTheNextWorkerResumesFromThem() async throws {
        let clock = ManualClock(start)
        let store = try openStore()
        let node = try makeNode(store: store, clock: clock, partitions: 2)
        _ = try await node.registerWorker("w1")
        let owned = try await node.beat("w1").assignments
        let leave: DeregisterResponse = try await node.post(RPCPath.deregister, DeregisterRequest(workerID: "w1"))
        XCTAssertEqual(leave.partitions, [0, 1])
        for item in owned {
            let checkpoint: CheckpointResponse = try await node.post(RPCPath.checkpoint, CheckpointRequest(
                workerID: "w1", partition: item.partition, epoch: item.epoch, nextOffset: 42, state: Data([1, 2, 3]), watermarkMs: start, durationMs: 1))
            XCTAssertTrue(checkpoint.accepted)
            let released: ReleaseResponse = try await node.post(RPCPath.release, ReleaseRequest(workerID: "w1", partition: item.partition, epoch: item.epoch))
            XCTAssertTrue(released.accepted)
        }
        var status: ClusterStatus = try await node.get(RPCPath.status)
        XCTAssertTrue(status.partitions.allSatisfy { $0.owner == nil && $0.assignedAtMs == nil })
        let gone: DeregisterResponse = try await node.post(RPCPath.deregister, DeregisterRequest(workerID: "w1"))
        XCTAssertEqual(gone.partitions, [])

        // The coordinator restarts (nothing is lost), then a worker joins and resumes both partitions.
        let restarted = try makeNode(store: store, clock: clock, partitions: 2)
        _ = try await restarted.registerWorker("w2")
        let w2 = try await restarted.beat("w2").assignments
        XCTAssertEqual(w2, [Assignment(partition: 0, epoch: 2), Assignment(partition: 1, epoch: 2)])
        let fetched: FetchCheckpointResponse = try await restarted.post(RPCPath.fetchCheckpoint, FetchCheckpointRequest(workerID: "w2", partition: 1, epoch: 2))
        XCTAssertEqual(fetched.nextOffset, 42)
        status = try await restarted.get(RPCPath.status)
        XCTAssertEqual(status.workers.map(\.id), ["w2"], "a worker that left is not restored")
    }

    func testAWorkerLeavingWhileTheCoordinatorRestartsFinishesLeaving() async throws {
        let clock = ManualClock(start)
        let store = try openStore()
        let node = try makeNode(store: store, clock: clock, partitions: 4)
        _ = try await node.registerWorker("w1")
        _ = try await node.registerWorker("w2")
        let w1 = try await node.beat("w1").assignments
        _ = try await node.beat("w2")
        let _: DeregisterResponse = try await node.post(RPCPath.deregister, DeregisterRequest(workerID: "w1"))

        let restarted = try makeNode(store: store, clock: clock, partitions: 4)
        // w1 is restored leaving: its heartbeats are accepted and list nothing; its releases complete the handoffs.
        let beat = try await restarted.beat("w1")
        XCTAssertEqual(beat.status, .ok)
        XCTAssertEqual(beat.assignments, [])
        _ = try await restarted.registerWorker("w2")
        for item in w1 {
            let released: ReleaseResponse = try await restarted.post(RPCPath.release, ReleaseRequest(workerID: "w1", partition: item.partition, epoch: item.epoch))
            XCTAssertTrue(released.accepted)
        }
        let w2All = try await restarted.beat("w2").assignments
        XCTAssertEqual(w2All.count, 4)
        let unknown: DeregisterResponse = try await restarted.post(RPCPath.deregister, DeregisterRequest(workerID: "nobody"))
        XCTAssertFalse(unknown.accepted)
    }
}
