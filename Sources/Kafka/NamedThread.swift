import Foundation

extension Thread {
    /// Starts `body` on a new thread named `name` (what top -H, perf and gdb show; Linux keeps
    /// 15 bytes of it).
    ///
    /// The name is set from inside the thread: on Linux, Foundation keeps a name set before
    /// `start()` on the `Thread` object only, and the OS thread keeps its creator's name
    /// ("oot.default-qos" when started from Swift concurrency).
    public static func start(named name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            Thread.current.name = String(decoding: name.utf8.prefix(15), as: UTF8.self)
            body()
        }
        thread.start()
    }
}
