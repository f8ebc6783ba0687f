import Foundation

// swift-testing runs tests in parallel on Swift's cooperative pool, one thread per core (two on
// CI). A test that blocks a pool thread (waiting for a process, a pipe or a semaphore) stalls every
// other test's tasks meanwhile; one stall of seconds made a test that paces its requests against
// the idle timeout miss it. Blocking waits therefore run on a thread of their own.

/// Runs `work`, which may block, on a new thread and waits for it without holding a pool thread.
/// Not `NIOThreadPool`: its few threads would queue one test's 10 s wait behind another's.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// `offThePool` for work that cannot fail.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: work()) }.start()
    }
}

extension Process {
    /// The exit status, waited for off the pool.
    func exitStatus() async -> Int32 {
        await offThePool {
            self.waitUntilExit()
            return self.terminationStatus
        }
    }
}
