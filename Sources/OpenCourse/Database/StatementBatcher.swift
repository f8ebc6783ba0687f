import NIOCore
import PostgresNIO
import SQLKit
import Synchronization

/// Runs the executions of one statement that arrive while others are in flight as one execution
/// (`BatchableStatement`). At most `maxInFlight` executions run at a time; a request that finds
/// them all busy waits, and when one finishes, what waited (up to `maxBatch`) goes in the next.
/// Under light load a request runs at once and alone; under heavy load one round trip and one
/// statement serve many requests, which saves PostgreSQL its per-statement work (and a commit per
/// insert) and the server a pool lease and two system calls per request. A request's timeout
/// covers its wait: one still waiting past it when a batch forms gets `DatabaseTimeoutError`.
///
/// No task of its own: the request that starts an execution runs it, hands every waiter of its
/// batch its rows, and passes the turn to the first request of the next batch.
final class StatementBatcher: Sendable {
    /// Runs the requests' values as one execution within the given seconds.
    typealias Execute = @Sendable (_ requests: [[StatementValue]], _ seconds: Double) async throws -> [[any SQLRow]]

    private enum Turn: Sendable {
        case done(Result<[any SQLRow], any Error>)
        /// Run the batch made of your own request and these.
        case lead([Waiter])
    }

    private struct Waiter: Sendable {
        let values: [StatementValue]
        let continuation: CheckedContinuation<Turn, Never>
        /// A request's database deadline covers its wait for a batch too.
        let deadline: ContinuousClock.Instant
    }

    private struct State {
        var waiting: [Waiter] = []
        var inFlight = 0

        mutating func startExecution(limit: Int) -> Bool {
            guard inFlight < limit else { return false }
            inFlight += 1
            return true
        }
    }

    private let state = Mutex(State())
    /// Requests answered from a batch of more than one, for tests and diagnostics.
    let requestsRunInBatches = Atomic<Int>(0)
    let maxInFlight: Int
    let maxBatch: Int
    let timeoutSeconds: Double

    /// The queue needs no bound of its own: an HTTP connection has one request in flight at a time.
    init(maxInFlight: Int, maxBatch: Int, timeoutSeconds: Double) {
        self.maxInFlight = max(1, maxInFlight)
        self.maxBatch = max(1, maxBatch)
        self.timeoutSeconds = timeoutSeconds
    }

    /// Requests waiting for a batch (tests wait for it instead of guessing with sleeps).
    var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// The rows of one request's execution, run alone or as part of a batch by `execute`, which
    /// gets every request's values and answers each request's rows, in order.
    func run(_ values: [StatementValue], execute: @escaping Execute) async throws -> [any SQLRow] {
        var others: [Waiter] = []
        // The batch runs within what is left of its first request's time: it waited longest.
        let deadline = ContinuousClock.now + .nanoseconds(Int64(timeoutSeconds * 1e9))
        if !state.withLock({ $0.startExecution(limit: maxInFlight) }) {
            let turn = await withCheckedContinuation { continuation in
                let leads = state.withLock { state in
                    guard state.startExecution(limit: maxInFlight) else {
                        state.waiting.append(Waiter(values: values, continuation: continuation, deadline: deadline))
                        return false
                    }
                    return true
                }
                if leads { continuation.resume(returning: .lead([])) }
            }
            switch turn {
            case .done(let result): return try result.get()
            case .lead(let batch): others = batch
            }
        }
        if !others.isEmpty { requestsRunInBatches.add(others.count + 1, ordering: .relaxed) }
        let results = await Self.outcomes(of: [values] + others.map(\.values), deadline: deadline, execute: execute)
        // The next batch's leader first: resumed on the same loop, it sends its statement before
        // this batch's requests write their responses, so the database is not left idle meanwhile.
        let now = ContinuousClock.now
        let (next, expired): ([Waiter]?, [Waiter]) = state.withLock { state in
            // Waiters queue in arrival order with one timeout, so the expired ones come first.
            let expired = Array(state.waiting.prefix { $0.deadline <= now })
            state.waiting.removeFirst(expired.count)
            guard !state.waiting.isEmpty else {
                state.inFlight -= 1
                return (nil, expired)
            }
            let batch = Array(state.waiting.prefix(maxBatch))
            state.waiting.removeFirst(batch.count)
            return (batch, expired)
        }
        for waiter in expired {
            waiter.continuation.resume(returning: .done(.failure(DatabaseTimeoutError(seconds: timeoutSeconds))))
        }
        if let next, let first = next.first {
            first.continuation.resume(returning: .lead(Array(next.dropFirst())))
        }
        for (waiter, result) in zip(others, results.dropFirst()) {
            waiter.continuation.resume(returning: .done(result))
        }
        return try results[0].get()
    }

    /// Each request's outcome. A batch that PostgreSQL refused for any reason but an unavailable
    /// database (a constraint one request broke, a deadlock) committed nothing; its two halves run
    /// again, concurrently, and so on down to single requests, so that each request gets its own
    /// answer and one bad request among 64 costs about a dozen statements rather than 64. Any
    /// other failure (the database is unreachable, the rows could not be read) is every request's.
    private static func outcomes(
        of requests: [[StatementValue]], deadline: ContinuousClock.Instant, execute: @escaping Execute
    ) async -> [Result<[any SQLRow], any Error>] {
        let left = deadline - .now
        let seconds = Double(left.components.seconds) + Double(left.components.attoseconds) * 1e-18
        do {
            let rows = try await execute(requests, max(0.001, seconds))
            guard rows.count == requests.count else {
                return Array(repeating: .failure(BatchAnswerMismatch(requests: requests.count, answers: rows.count)), count: requests.count)
            }
            return rows.map { .success($0) }
        } catch let error as PSQLError where requests.count > 1 && error.serverInfo?[.sqlState] != nil && DatabaseFailure(error) != .unavailable {
            let middle = requests.count / 2
            async let first = outcomes(of: Array(requests[..<middle]), deadline: deadline, execute: execute)
            async let second = outcomes(of: Array(requests[middle...]), deadline: deadline, execute: execute)
            return await first + second
        } catch {
            return Array(repeating: .failure(error), count: requests.count)
        }
    }
}

/// A batch answered for a different number of requests than it was given: a bug, never retried.
struct BatchAnswerMismatch: Error, CustomStringConvertible {
    var requests: Int
    var answers: Int
    var description: String { "a batch of \(requests) requests was answered for \(answers)" }
}

/// One batcher per event loop and statement, made on first use: a batch is run, answered and
/// resumed on the loop of the requests it serves (see `LoopAffineClients`).
final class StatementBatchers: Sendable {
    /// Executions of one statement in flight at once per loop: a loop's other statements keep the
    /// rest of its share of the pool.
    static let maxInFlight = 2
    static let maxBatch = 64

    private struct Key: Hashable {
        let loop: ObjectIdentifier?
        let statement: ObjectIdentifier
    }

    private let batchers = Mutex<[Key: StatementBatcher]>([:])

    var requestsRunInBatches: Int {
        batchers.withLock { $0.values.reduce(0) { $0 + $1.requestsRunInBatches.load(ordering: .relaxed) } }
    }

    let timeoutSeconds: Double

    init(timeoutSeconds: Double) {
        self.timeoutSeconds = timeoutSeconds
    }

    func batcher(for statement: Any.Type, loop: (any EventLoop)?) -> StatementBatcher {
        let key = Key(loop: loop.map { ObjectIdentifier($0) }, statement: ObjectIdentifier(statement))
        return batchers.withLock { batchers in
            if let batcher = batchers[key] { return batcher }
            let batcher = StatementBatcher(maxInFlight: Self.maxInFlight, maxBatch: Self.maxBatch, timeoutSeconds: timeoutSeconds)
            batchers[key] = batcher
            return batcher
        }
    }
}
