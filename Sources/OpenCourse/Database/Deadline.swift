import NIOCore
import NIOPosix
import Synchronization

/// The database did not answer in time.
struct DatabaseTimeoutError: Error, CustomStringConvertible {
    var seconds: Double
    var description: String { "the database did not answer within \(seconds) s" }
}

/// Runs `operation` but gives up waiting after `seconds`: the caller gets `DatabaseTimeoutError`
/// and the operation is cancelled. Unlike a task group this never waits for an operation that
/// ignores cancellation (a query on a half-open connection), so a request cannot hang. The timer
/// is a NIO scheduled task, far cheaper per query than a sleeping Swift task.
func withDeadline<Result: Sendable>(
    seconds: Double, _ operation: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        let race = DeadlineRace(continuation)
        let work = Task {
            do { race.finish(.success(try await operation())) } catch { race.finish(.failure(error)) }
        }
        // `any()` is the current loop when called on one: no other thread to wake to arm or cancel.
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
            if race.finish(.failure(DatabaseTimeoutError(seconds: seconds))) { work.cancel() }
        }
        race.onFinish { timer.cancel() }
    }
}

/// Resumes the continuation once, with whichever result arrives first.
private final class DeadlineRace<Result: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Result, any Error>?
        var finished = false
        var cleanup: (@Sendable () -> Void)?
    }

    private let state: Mutex<State>

    init(_ continuation: CheckedContinuation<Result, any Error>) {
        state = Mutex(State(continuation: continuation))
    }

    /// Registers what to do when the race ends (at once if it already has).
    func onFinish(_ cleanup: @escaping @Sendable () -> Void) {
        let finished = state.withLock { state in
            if !state.finished { state.cleanup = cleanup }
            return state.finished
        }
        if finished { cleanup() }
    }

    @discardableResult
    func finish(_ result: Swift.Result<Result, any Error>) -> Bool {
        let (continuation, cleanup) = state.withLock { state -> (CheckedContinuation<Result, any Error>?, (@Sendable () -> Void)?) in
            guard !state.finished else { return (nil, nil) }
            state.finished = true
            defer { state.continuation = nil; state.cleanup = nil }
            return (state.continuation, state.cleanup)
        }
        guard let continuation else { return false }
        continuation.resume(with: result)
        cleanup?()
        return true
    }
}
