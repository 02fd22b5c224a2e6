import Foundation

/// A value guarded by a lock, for the little state that is read from outside an event loop
/// (a server's bound port, its counters, the set of open connections).
final class Locked<Value: Sendable>: @unchecked Sendable {  // unchecked: every access goes through `lock`
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
