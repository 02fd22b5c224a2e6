import Coordinator
import Protocol
import XCTest

final class AssignmentPlannerTests: XCTestCase {
    let planner = AssignmentPlanner(partitionCount: 12, handoffTimeoutMs: 15_000)

    /// Partition counts per worker (owner of active or releasing rows).
    private func counts(_ rows: [PartitionAssignment]) -> [String: Int] {
        rows.reduce(into: [:]) { counts, row in
            if let owner = row.owner { counts[owner, default: 0] += 1 }
        }
    }

    private func owners(_ rows: [PartitionAssignment]) -> [String?] { rows.map(\.owner) }

    /// Completes every pending handoff as if each owner released its partitions.
    private func releaseAll(_ plan: AssignmentPlan, live: Set<String>, now: Int64 = 0) -> AssignmentPlan {
        var current = plan
        for row in plan.assignments where row.state == .releasing {
            guard let released = planner.release(current.assignments, partition: row.partition, by: row.owner!, epoch: row.epoch, live: live, now: now) else {
                XCTFail("release of partition \(row.partition) by its owner was refused")
                continue
            }
            current = AssignmentPlan(assignments: released.assignments, changes: current.changes + released.changes)
        }
        return current
    }

    func testBalancedForOneToFiveWorkers() {
        for n in 1...5 {
            let workers = Set((1...n).map { "w\($0)" })
            let plan = planner.plan([], live: workers, now: 0)
            XCTAssertEqual(plan.assignments.count, 12)
            XCTAssertTrue(plan.assignments.allSatisfy { $0.state == .active && $0.epoch == 1 }, "\(n) workers")
            let perWorker = counts(plan.assignments)
            XCTAssertEqual(Set(perWorker.keys), workers)
            XCTAssertEqual(perWorker.values.reduce(0, +), 12)
            XCTAssertLessThanOrEqual(perWorker.values.max()! - perWorker.values.min()!, 1, "\(n) workers: \(perWorker)")
            XCTAssertEqual(plan.changes.count, 12)
            XCTAssertTrue(plan.changes.allSatisfy { $0.kind == .assigned && $0.from == nil })
        }
    }

    func testDeterministicLayoutAndTieBreakByWorkerID() {
        // 12 over 5: the two extra partitions go to the smallest ids; partitions are dealt in order.
        let plan = planner.plan([], live: ["e", "c", "a", "d", "b"], now: 0)
        XCTAssertEqual(owners(plan.assignments), ["a", "a", "a", "b", "b", "b", "c", "c", "d", "d", "e", "e"])
        // Same inputs in another order: same plan.
        let shuffled = planner.plan(plan.assignments.reversed(), live: ["b", "d", "a", "c", "e"], now: 0)
        XCTAssertEqual(shuffled.assignments, plan.assignments)
        XCTAssertEqual(shuffled.changes, [])
    }

    func testPlanningAgainChangesNothingAndKeepsEpochs() {
        let first = planner.plan([], live: ["w1", "w2", "w3"], now: 0)
        let second = planner.plan(first.assignments, live: ["w1", "w2", "w3"], now: 10_000)
        XCTAssertEqual(second.assignments, first.assignments)
        XCTAssertEqual(second.changes, [])
    }

    func testJoinMovesExactlyTheNeededPartitionsThroughHandoff() {
        let three = planner.plan([], live: ["w1", "w2", "w3"], now: 0)
        let before = three.assignments

        let four = planner.plan(before, live: ["w1", "w2", "w3", "w4"], now: 1_000)
        // 4/4/4 -> 3/3/3/3: exactly one partition leaves each old worker, all toward w4.
        XCTAssertEqual(four.changes.count, 3)
        XCTAssertTrue(four.changes.allSatisfy { $0.kind == .handoffStarted && $0.to == "w4" })
        XCTAssertEqual(Set(four.changes.compactMap(\.from)), ["w1", "w2", "w3"])
        // Handoff first: nothing is w4's yet, epochs unchanged, the old owners still own (and may write).
        XCTAssertEqual(four.assignments(for: "w4"), [])
        for change in four.changes {
            let row = four.assignments[Int(change.partition)]
            XCTAssertEqual(row.state, .releasing)
            XCTAssertEqual(row.owner, change.from)
            XCTAssertEqual(row.epoch, 1)
            XCTAssertTrue(row.permitsWrite(by: change.from!, epoch: 1))
        }
        // Partitions that stay keep owner and epoch.
        let moved = Set(four.changes.map(\.partition))
        for row in four.assignments where !moved.contains(row.partition) {
            XCTAssertEqual(row, before[Int(row.partition)])
        }

        let done = releaseAll(four, live: ["w1", "w2", "w3", "w4"])
        XCTAssertEqual(counts(done.assignments), ["w1": 3, "w2": 3, "w3": 3, "w4": 3])
        XCTAssertEqual(done.assignments(for: "w4").map(\.partition).sorted(), moved.sorted())
        XCTAssertTrue(done.assignments(for: "w4").allSatisfy { $0.epoch == 2 })

        // A fifth worker: 3/3/3/3 -> 3/3/2/2/2 moves exactly two.
        let five = planner.plan(done.assignments, live: ["w1", "w2", "w3", "w4", "w5"], now: 2_000)
        XCTAssertEqual(five.changes.count, 2)
        XCTAssertTrue(five.changes.allSatisfy { $0.kind == .handoffStarted && $0.to == "w5" })
    }

    func testLeaveMovesOnlyTheLeaversPartitionsStraightToNewOwnersWithEpochPlusOne() {
        let three = planner.plan([], live: ["w1", "w2", "w3"], now: 0).assignments
        let w2Partitions = three.filter { $0.owner == "w2" }.map(\.partition)

        let two = planner.plan(three, live: ["w1", "w3"], now: 1_000)
        XCTAssertEqual(two.changes.map(\.partition).sorted(), w2Partitions)
        XCTAssertTrue(two.changes.allSatisfy { $0.kind == .ownerDown && $0.from == "w2" && $0.epoch == 2 })
        XCTAssertEqual(counts(two.assignments), ["w1": 6, "w3": 6])
        for row in two.assignments {
            if w2Partitions.contains(row.partition) {
                XCTAssertEqual(row.state, .active)
                XCTAssertEqual(row.epoch, 2)
            } else {
                XCTAssertEqual(row, three[Int(row.partition)], "untouched partitions keep owner and epoch")
            }
        }
    }

    func testHandoffRefusesWrongReleasesAndCompletesOnTheOwnersRelease() throws {
        let alone = planner.plan([], live: ["a"], now: 0).assignments
        let joined = planner.plan(alone, live: ["a", "b"], now: 1_000)
        let releasing = joined.assignments.filter { $0.state == .releasing }
        XCTAssertEqual(releasing.count, 6)
        // a is told to stop exactly the releasing ones.
        XCTAssertEqual(Set(joined.assignments(for: "a").map(\.partition)), Set(joined.assignments.filter { $0.state == .active }.map(\.partition)))

        let p = releasing[0].partition
        let live: Set<String> = ["a", "b"]
        XCTAssertNil(planner.release(joined.assignments, partition: p, by: "b", epoch: 1, live: live, now: 2_000), "not the owner")
        XCTAssertNil(planner.release(joined.assignments, partition: p, by: "a", epoch: 0, live: live, now: 2_000), "stale epoch")
        let active = try XCTUnwrap(joined.assignments.first { $0.state == .active })
        XCTAssertNil(planner.release(joined.assignments, partition: active.partition, by: "a", epoch: 1, live: live, now: 2_000), "not being handed off")

        let released = try XCTUnwrap(planner.release(joined.assignments, partition: p, by: "a", epoch: 1, live: live, now: 2_000))
        XCTAssertEqual(released.changes, [AssignmentChange(kind: .released, partition: p, from: "a", to: "b", epoch: 2)])
        XCTAssertEqual(released.assignments[Int(p)], PartitionAssignment(partition: p, owner: "b", epoch: 2, state: .active))
        XCTAssertEqual(released.assignments(for: "b"), [Assignment(partition: p, epoch: 2)])
        XCTAssertFalse(released.assignments[Int(p)].permitsWrite(by: "a", epoch: 1), "the old owner is fenced")
    }

    func testAPartitionItsOwnerWasNeverToldAboutMovesWithoutHandoff() {
        // a got everything but heard (in a heartbeat answer) only of partitions 0...3.
        let alone = planner.plan([], live: ["a"], now: 0).assignments
        let told = Set((0..<4).map { Assignment(partition: $0, epoch: 1) })
        let joined = planner.plan(alone, live: ["a", "b"], now: 1_000, announced: told)
        // a keeps 0...5; of 6...11, none was announced: they go to b at once, epoch 2.
        XCTAssertEqual(joined.changes.count, 6)
        XCTAssertTrue(joined.changes.allSatisfy { $0.kind == .neverStarted && $0.from == "a" && $0.to == "b" && $0.epoch == 2 })
        XCTAssertEqual(joined.assignments(for: "b").map(\.partition), Array(6..<12))
        XCTAssertFalse(joined.assignments.contains { $0.state == .releasing })

        // Had a been told about partition 11, that one alone would be handed off.
        let toldMore = told.union([Assignment(partition: 11, epoch: 1)])
        let mixed = planner.plan(alone, live: ["a", "b"], now: 1_000, announced: toldMore)
        XCTAssertEqual(mixed.changes.filter { $0.kind == .handoffStarted }.map(\.partition), [11])
        XCTAssertEqual(mixed.changes.filter { $0.kind == .neverStarted }.map(\.partition), [6, 7, 8, 9, 10])
    }

    func testHandoffCompletesWhenTheOwnerGoesDown() {
        let alone = planner.plan([], live: ["a"], now: 0).assignments
        let joined = planner.plan(alone, live: ["a", "b"], now: 1_000).assignments
        let down = planner.plan(joined, live: ["b"], now: 2_000)
        XCTAssertEqual(down.changes.count, 12)
        XCTAssertTrue(down.changes.allSatisfy { $0.kind == .ownerDown && $0.to == "b" && $0.epoch == 2 })
        XCTAssertTrue(down.assignments.allSatisfy { $0.owner == "b" && $0.state == .active })
    }

    func testHandoffTimesOutAndFencesTheOwner() {
        let alone = planner.plan([], live: ["a"], now: 0).assignments
        let joined = planner.plan(alone, live: ["a", "b"], now: 1_000).assignments
        XCTAssertEqual(planner.plan(joined, live: ["a", "b"], now: 15_999).changes, [], "not yet")
        let late = planner.plan(joined, live: ["a", "b"], now: 16_000)
        XCTAssertEqual(late.changes.count, 6)
        XCTAssertTrue(late.changes.allSatisfy { $0.kind == .handoffTimedOut && $0.from == "a" && $0.to == "b" && $0.epoch == 2 })
        XCTAssertEqual(counts(late.assignments), ["a": 6, "b": 6])
    }

    func testHandoffIsCancelledWhenTheNextOwnerLeavesFirst() {
        let alone = planner.plan([], live: ["a"], now: 0).assignments
        let joined = planner.plan(alone, live: ["a", "b"], now: 1_000).assignments
        let gone = planner.plan(joined, live: ["a"], now: 2_000)
        XCTAssertEqual(gone.changes.count, 6)
        XCTAssertTrue(gone.changes.allSatisfy { $0.kind == .handoffCancelled && $0.to == "a" && $0.epoch == 1 })
        XCTAssertEqual(gone.assignments, alone, "a keeps everything under its epoch: nobody else ever owned it")
    }

    func testWithoutLiveWorkersPartitionsAreUnassignedAndTheNextOwnerGetsANewEpoch() {
        let owned = planner.plan([], live: ["a"], now: 0).assignments
        let none = planner.plan(owned, live: [], now: 1_000)
        XCTAssertTrue(none.assignments.allSatisfy { $0.owner == nil && $0.state == .unassigned && $0.epoch == 1 })
        XCTAssertTrue(none.changes.allSatisfy { $0.kind == .unassigned && $0.from == "a" })
        XCTAssertFalse(none.assignments[0].permitsWrite(by: "a", epoch: 1))

        let back = planner.plan(none.assignments, live: ["a"], now: 2_000)
        XCTAssertTrue(back.assignments.allSatisfy { $0.owner == "a" && $0.epoch == 2 })
    }

    func testRowsAreNormalizedToThePartitionCount() {
        let eight = AssignmentPlanner(partitionCount: 8, handoffTimeoutMs: 1).plan([], live: ["a"], now: 0).assignments
        let plan = planner.plan(eight + [PartitionAssignment(partition: 40, owner: "a", epoch: 3, state: .active)], live: ["a"], now: 0)
        XCTAssertEqual(plan.assignments.map(\.partition), Array(0..<12))
        XCTAssertEqual(plan.changes.map(\.partition), [8, 9, 10, 11])
        XCTAssertEqual(Array(plan.assignments.prefix(8)), eight)
    }
}
