import Foundation
import Protocol
import XCTest

/// The zombie case with a real network partition: a worker runs in its own network namespace and
/// its link is taken down past its lease. Needs root (CI runs as root); skipped otherwise.
final class FailoverNetworkNamespaceTests: FailoverTestCase {
    private var namespaces: [NetworkNamespace] = []
    private var namespaced: [ProcessHarness.Child] = []

    override func tearDown() {
        for child in namespaced { child.signal(SIGKILL) }
        for child in namespaced { _ = child.wait(timeout: .seconds(5)) }
        if let run = testRun, run.failureCount + run.unexpectedExceptionCount > 0 {
            for child in namespaced {
                print("===== \(child.name) (in a network namespace) stderr =====\n\(child.stderr.suffix(6000))")
            }
        }
        for namespace in namespaces { namespace.remove() }
        super.tearDown()
    }

    func testWorkerCutOffInItsNetworkNamespaceGetsNoStaleWriteAccepted() async throws {
        guard getuid() == 0 else {
            throw XCTSkip("needs root: it creates a network namespace and a veth pair (CI runs it as root)")
        }
        guard let ip = Self.which("ip") else {
            throw XCTSkip("iproute2's `ip` is not installed; scripts/install-deps.sh --test installs it")
        }
        let help = try harness.run("worker-help", ["worker", "--help"])
        coordinatorEnvironment = ["VIGIL_LOG_LEVEL": "debug"]
        try startBrokerAndCoordinator()
        let fixture = try fixture()

        let namespace: NetworkNamespace
        do {
            namespace = try NetworkNamespace(ip: ip)
        } catch {
            throw XCTSkip("cannot build a network namespace with a veth link to the host's loopback services (\(error)); this kernel or container does not allow it")
        }
        namespaces.append(namespace)
        // The broker and the coordinator listen on 127.0.0.1 only (the broker also advertises
        // 127.0.0.1 in its metadata); the namespace reaches them through its veth route.
        let probe = try startInNamespace(namespace, "status-probe", ["status", "--coordinator", coordinatorAddress, "--json"])
        let probed = probe.wait(timeout: .seconds(20))
        guard probed == 0 || probed == 2 else {
            throw XCTSkip("the namespace cannot reach the coordinator at \(coordinatorAddress) through \(namespace.hostLink) with route_localnet (exit \(probed.map(String.init) ?? "timeout")): \(probe.stderr)")
        }

        try startWorker("w1")
        try startWorker("w2")
        // The worker's metrics endpoint would bind 127.0.0.1, which the namespace routes to the host.
        let metricsOff = help.contains("--metrics-listen") ? ["--metrics-listen", "off"] : []
        let cutOff = try startInNamespace(namespace, "worker-w3", ["worker", "--coordinator", coordinatorAddress, "--id", "w3"] + metricsOff)
        _ = try await awaitStatus("3 workers sharing 12 partitions evenly", timeout: .seconds(60)) { s in
            let up = s.workers.filter { $0.state == "up" }
            return up.count == 3 && s.partitions.allSatisfy { $0.owner != nil } && up.allSatisfy { $0.partitions.count == 4 }
        }
        let replay = try startPacedReplay(fixture)
        try await awaitProgress(0.3, of: fixture, replay: replay)

        try await zombieRoundTrip("w3", freeze: namespace.cut, thaw: namespace.restore)
        XCTAssertTrue(cutOff.process.isRunning, "the cut-off worker survives the partition: \(cutOff.stderr.suffix(2000))")

        try await awaitReplay(replay, fixture)
        try await awaitEverythingProcessed(fixture)
        try await assertExactlyTheOfflineAnomalies(fixture)
        let rejected = assertNoStaleWriteAccepted(from: "w3", coordinators: [coordinator])
        let selfFenced = cutOff.stderr.contains("lease expired")
        print("partitioned worker w3: \(rejected) stale writes rejected by the coordinator; self-fenced while cut off: \(selfFenced)")
        XCTAssertTrue(selfFenced, "a worker that cannot renew its lease stops its tasks by itself")
    }

    /// Runs `vigil ARGS` inside `namespace` (`ip netns exec` replaces itself with vigil, so the
    /// child's pid is vigil's).
    private func startInNamespace(_ namespace: NetworkNamespace, _ name: String, _ arguments: [String]) throws -> ProcessHarness.Child {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: namespace.ip)
        process.arguments = ["netns", "exec", namespace.name, ProcessHarness.vigilPath] + arguments
        process.currentDirectoryURL = harness.directory
        var environment = ProcessInfo.processInfo.environment
        environment["VIGIL_LOG_LEVEL"] = environment["VIGIL_LOG_LEVEL"] ?? "info"
        process.environment = environment
        let out = harness.directory.appendingPathComponent("\(name).stdout")
        let err = harness.directory.appendingPathComponent("\(name).stderr")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let child = ProcessHarness.Child(name: name, process: process, stdoutURL: out, stderrURL: err)
        namespaced.append(child)
        return child
    }
}

/// A network namespace joined to the host by a veth pair on a private /30, from which the host's
/// 127.0.0.1 services are reachable: the namespace routes 127.0.0.0/8 over the veth, and
/// `route_localnet` on both ends lets the kernels accept loopback addresses on a real link. Taking
/// the host end down cuts the namespace off (connections hang, as in a real partition).
final class NetworkNamespace {
    let ip: String
    let name: String
    let hostLink: String
    let namespaceLink: String
    let hostAddress: String
    let namespaceAddress: String

    init(ip: String) throws {
        let tag = String(UInt16.random(in: 0...0xFFF), radix: 16)
        let subnet = Int.random(in: 0..<64) * 4
        self.ip = ip
        name = "vigil-it-\(tag)"
        hostLink = "vgh\(tag)"
        namespaceLink = "vgn\(tag)"
        hostAddress = "10.213.77.\(subnet + 1)"
        namespaceAddress = "10.213.77.\(subnet + 2)"
        do {
            try run(["netns", "add", name])
            try run(["link", "add", hostLink, "type", "veth", "peer", "name", namespaceLink])
            try run(["link", "set", namespaceLink, "netns", name])
            try run(["addr", "add", "\(hostAddress)/30", "dev", hostLink])
            try run(["link", "set", hostLink, "up"])
            try inside(["addr", "add", "\(namespaceAddress)/30", "dev", namespaceLink])
            try inside(["link", "set", namespaceLink, "up"])
            try FailoverTestCase.runTool(ip, ["netns", "exec", name, "sysctl", "-q", "-w", "net.ipv4.conf.all.route_localnet=1"])
            try FailoverTestCase.runTool(ip, ["netns", "exec", name, "sysctl", "-q", "-w", "net.ipv4.conf.\(namespaceLink).route_localnet=1"])
            try "1".write(toFile: "/proc/sys/net/ipv4/conf/\(hostLink)/route_localnet", atomically: false, encoding: .utf8)
            try routeLoopback()
        } catch {
            remove()
            throw error
        }
    }

    /// Takes the host end of the link down: nothing gets in or out of the namespace.
    func cut() throws {
        try run(["link", "set", hostLink, "down"])
    }

    /// Brings the link back and makes sure the loopback route is in place again.
    func restore() throws {
        try run(["link", "set", hostLink, "up"])
        try routeLoopback()
    }

    /// Deletes the namespace (which deletes the veth pair). Safe to call twice.
    func remove() {
        _ = try? run(["netns", "del", name])
        _ = try? run(["link", "del", hostLink])
    }

    private func routeLoopback() throws {
        try inside(["route", "replace", "127.0.0.0/8", "via", hostAddress, "dev", namespaceLink, "src", namespaceAddress])
    }

    private func inside(_ arguments: [String]) throws {
        try run(["-n", name] + arguments)
    }

    @discardableResult
    private func run(_ arguments: [String]) throws -> String {
        try FailoverTestCase.runTool(ip, arguments)
    }
}
