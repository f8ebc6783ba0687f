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
    try await withDeadline(secondsToStart: seconds) { _ in try await operation() }
}

/// The same, but the deadline may be called off: once `operation` calls `started()` (a connection
/// was leased), it runs to its end. `started()` is false when the deadline has already passed:
/// the caller has had its `DatabaseTimeoutError`, and the operation should stop.
func withDeadline<Result: Sendable>(
    secondsToStart seconds: Double, _ operation: @escaping @Sendable (_ started: @escaping @Sendable () -> Bool) async throws -> Result
) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        let race = DeadlineRace(continuation)
        let work = Task {
            do { race.finish(.success(try await operation { race.disarm() })) } catch { race.finish(.failure(error)) }
        }
        // `any()` is the current loop when called on one: no other thread to wake to arm or cancel.
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
            if race.expire(DatabaseTimeoutError(seconds: seconds)) { work.cancel() }
        }
        race.onDisarm { timer.cancel() }
    }
}

/// Resumes the continuation once, with whichever result arrives first; once disarmed, only the
/// operation's own result counts.
private final class DeadlineRace<Result: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Result, any Error>?
        var finished = false
        var disarmed = false
        var cancelTimer: (@Sendable () -> Void)?
    }

    private let state: Mutex<State>

    init(_ continuation: CheckedContinuation<Result, any Error>) {
        state = Mutex(State(continuation: continuation))
    }

    /// Registers how to cancel the timer: when the race ends or the deadline is called off (at
    /// once if either happened already).
    func onDisarm(_ cancelTimer: @escaping @Sendable () -> Void) {
        let done = state.withLock { state in
            if !state.finished && !state.disarmed { state.cancelTimer = cancelTimer }
            return state.finished || state.disarmed
        }
        if done { cancelTimer() }
    }

    /// Calls the deadline off; false if it has passed already.
    func disarm() -> Bool {
        let (disarmed, cancelTimer) = state.withLock { state -> (Bool, (@Sendable () -> Void)?) in
            guard !state.finished else { return (false, nil) }
            state.disarmed = true
            defer { state.cancelTimer = nil }
            return (true, state.cancelTimer)
        }
        cancelTimer?()
        return disarmed
    }

    /// The timer's end of the race: true if it won.
    func expire(_ error: any Error) -> Bool {
        let continuation = state.withLock { state -> CheckedContinuation<Result, any Error>? in
            guard !state.finished && !state.disarmed else { return nil }
            state.finished = true
            defer { state.continuation = nil; state.cancelTimer = nil }
            return state.continuation
        }
        guard let continuation else { return false }
        continuation.resume(throwing: error)
        return true
    }

    func finish(_ result: Swift.Result<Result, any Error>) {
        let (continuation, cancelTimer) = state.withLock { state -> (CheckedContinuation<Result, any Error>?, (@Sendable () -> Void)?) in
            guard !state.finished else { return (nil, nil) }
            state.finished = true
            defer { state.continuation = nil; state.cancelTimer = nil }
            return (state.continuation, state.cancelTimer)
        }
        guard let continuation else { return }
        continuation.resume(with: result)
        cancelTimer?()
    }
}
