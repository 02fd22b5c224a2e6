import Coordinator
import XCTest

final class MembershipTests: XCTestCase {
    /// Heartbeat every 1 s, lease 6 s (the defaults of DESIGN.md).
    private func membership() -> Membership {
        Membership(heartbeatIntervalMs: 1_000, leaseTimeoutMs: 6_000, forgetDownAfterMs: 60_000)
    }

    func testSuspectAfterTwoMissedHeartbeatsThenDownAfterTheLease() {
        var members = membership()
        XCTAssertEqual(members.register(id: "w1", address: "h1", pid: 1, now: 0), .joined("w1"))
        XCTAssertEqual(members.tick(now: 2_000), [], "two intervals of silence: the second heartbeat is not late yet")
        XCTAssertEqual(members.tick(now: 2_001), [.suspect("w1", silentMs: 2_001)])
        XCTAssertEqual(members["w1"]?.state, .suspect)
        XCTAssertEqual(members.liveIDs, ["w1"], "suspect workers keep their partitions")
        XCTAssertEqual(members.tick(now: 5_999), [], "suspect is reported once")
        XCTAssertEqual(members.tick(now: 6_000), [.down("w1", silentMs: 6_000)])
        XCTAssertEqual(members["w1"]?.state, .down)
        XCTAssertEqual(members.liveIDs, [])
        XCTAssertEqual(members.heartbeat(id: "w1", now: 6_100), .unknownWorker, "a down worker must register again")
    }

    func testHeartbeatsRenewTheLeaseAndRecoverASuspect() {
        var members = membership()
        _ = members.register(id: "w1", address: "h1", pid: 1, now: 0)
        XCTAssertEqual(members.heartbeat(id: "w1", now: 1_000), .renewed(recovered: false))
        XCTAssertEqual(members.tick(now: 3_500), [.suspect("w1", silentMs: 2_500)])
        XCTAssertEqual(members.heartbeat(id: "w1", now: 3_600), .renewed(recovered: true))
        XCTAssertEqual(members["w1"]?.state, .up)
        XCTAssertEqual(members.tick(now: 9_599), [.suspect("w1", silentMs: 5_999)])
        XCTAssertEqual(members.tick(now: 9_600), [.down("w1", silentMs: 6_000)], "lease counts from the last heartbeat")
    }

    func testRegisteringAgainAfterDownStartsAFreshLease() {
        var members = membership()
        _ = members.register(id: "w1", address: "h1", pid: 1, now: 0)
        _ = members.tick(now: 6_000)
        XCTAssertEqual(members.register(id: "w1", address: "h1", pid: 2, now: 7_000), .joined("w1"))
        let member = members["w1"]
        XCTAssertEqual(member?.state, .up)
        XCTAssertEqual(member?.pid, 2)
        XCTAssertEqual(member?.registeredAtMs, 7_000)
        XCTAssertEqual(member?.lastHeartbeatMs, 7_000)
        XCTAssertNil(member?.downAtMs)
        XCTAssertEqual(members.tick(now: 9_000), [])
        XCTAssertEqual(members.heartbeat(id: "w1", now: 9_000), .renewed(recovered: false))
    }

    func testRegisteringAgainWhileLiveKeepsTheMember() {
        var members = membership()
        _ = members.register(id: "w1", address: "h1", pid: 1, now: 0)
        XCTAssertEqual(members.register(id: "w1", address: "h1", pid: 1, now: 4_000), .reregistered("w1"))
        XCTAssertEqual(members["w1"]?.registeredAtMs, 0)
        XCTAssertEqual(members.tick(now: 9_999), [.suspect("w1", silentMs: 5_999)])
    }

    func testRestoredMembersMustRegisterWithinALease() {
        var members = membership()
        members.restore(id: "old", address: "h1", pid: 1, registeredAtMs: -50_000, now: 100_000)
        members.restore(id: "back", address: "h2", pid: 2, registeredAtMs: -50_000, now: 100_000)
        XCTAssertEqual(members.liveIDs, ["old", "back"], "restored workers keep their partitions for a lease")
        XCTAssertEqual(members.heartbeat(id: "back", now: 100_500), .unknownWorker, "must register to get the settings again")
        XCTAssertEqual(members.register(id: "back", address: "h2", pid: 2, now: 101_000), .reregistered("back"))
        XCTAssertEqual(members.heartbeat(id: "back", now: 105_000), .renewed(recovered: false))
        XCTAssertEqual(members.tick(now: 105_999), [], "restored members are not suspected, only expired")
        XCTAssertEqual(members.tick(now: 106_000), [.down("old", silentMs: 6_000)])
        XCTAssertEqual(members.liveIDs, ["back"])
    }

    func testDownMembersAreForgottenLater() {
        var members = membership()
        _ = members.register(id: "w1", address: "h1", pid: 1, now: 0)
        _ = members.tick(now: 6_000)
        XCTAssertEqual(members.tick(now: 65_999), [])
        XCTAssertEqual(members.tick(now: 66_000), [.forgotten("w1")])
        XCTAssertNil(members["w1"])
        XCTAssertEqual(members.members, [])
    }
}
