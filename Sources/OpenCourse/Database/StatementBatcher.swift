import NIOCore
import NIOPosix
import PostgresNIO
import SQLKit
import Synchronization

/// Runs the executions of one statement that arrive while others are in flight as one execution
/// (`BatchableStatement`). Up to `maxLanes` lanes per batcher run executions: a request that
/// finds one free runs at once, alone, in its own task; the others queue, and a lane takes what
/// waits (up to `maxBatch`) as one execution at a time. Under light load a request runs alone;
/// under heavy load one round trip and one statement serve many requests, which saves PostgreSQL
/// its per-statement work (and a commit per insert) and the server a pool lease and two system
/// calls per request. A request's timeout covers its wait: one still waiting past it when a batch
/// forms gets `DatabaseTimeoutError`.
///
/// When requests wait, a lane is a task of its own that serves them on one leased connection, for
/// up to `batchesPerLease` batches in a row, and keeps the connection `lingerSeconds` for what
/// comes next once nothing waits. PostgresNIO's pool arms an idle timer each time a connection
/// goes back idle, and a cancelled timer's memory is kept until its deadline (5 s, see
/// `DatabaseFactory`): a lease per batch kept ~5 MiB under load. The limit gives the loop's other
/// statements, which lease per statement, a connection between a lane's turns.
final class StatementBatcher: Sendable {
    /// Runs the requests' values as one execution within the given seconds.
    typealias Execute = @Sendable (_ requests: [[StatementValue]], _ seconds: Double) async throws -> [[any SQLRow]]
    /// Leases a connection, waiting at most `seconds`, and calls `lane` with an `Execute` on it;
    /// the connection goes back when `lane` returns, and so does `lane`'s answer: whether the lane
    /// goes on. Throws when no connection came in time (`lane` is then never called).
    typealias Lease = @Sendable (
        _ seconds: Double, _ lane: @escaping @Sendable (@escaping Execute) async -> Bool
    ) async throws -> Bool

    private struct Waiter: Sendable {
        let values: [StatementValue]
        let continuation: CheckedContinuation<[any SQLRow], any Error>
        /// A request's database deadline covers its wait for a batch too.
        let deadline: ContinuousClock.Instant
    }

    /// A lane that found nothing waiting and holds on to its connection a moment for what comes.
    private struct ParkedLane: Sendable {
        let id: UInt64
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var waiting: [Waiter] = []
        var lanes = 0
        var parked: [ParkedLane] = []
        var parkings: UInt64 = 0

        mutating func takeLane(limit: Int) -> Bool {
            guard lanes < limit else { return false }
            lanes += 1
            return true
        }

        /// True if requests wait for the lane; otherwise the lane retires.
        mutating func keepLaneForWaiters() -> Bool {
            guard waiting.isEmpty else { return true }
            lanes -= 1
            return false
        }

        /// Takes out the requests whose time ran out while they waited; they queue in arrival
        /// order with one timeout, so they come first.
        mutating func removeExpired(now: ContinuousClock.Instant) -> [Waiter] {
            let expired = Array(waiting.prefix { $0.deadline <= now })
            waiting.removeFirst(expired.count)
            return expired
        }
    }

    private let state = Mutex(State())
    /// Requests answered from a batch of more than one, for tests and diagnostics.
    let requestsRunInBatches = Atomic<Int>(0)
    /// Connections leased by lanes, for tests and diagnostics.
    let leases = Atomic<Int>(0)
    let maxLanes: Int
    let maxBatch: Int
    let batchesPerLease: Int
    /// How long a lane that found nothing waiting keeps its connection for what comes next.
    let lingerSeconds: Double
    let timeoutSeconds: Double

    /// The queue needs no bound of its own: an HTTP connection has one request in flight at a time.
    init(maxLanes: Int, maxBatch: Int, batchesPerLease: Int, lingerSeconds: Double, timeoutSeconds: Double) {
        self.maxLanes = max(1, maxLanes)
        self.maxBatch = max(1, maxBatch)
        self.batchesPerLease = max(1, batchesPerLease)
        self.lingerSeconds = lingerSeconds
        self.timeoutSeconds = timeoutSeconds
    }

    /// Requests waiting for a batch (tests wait for it instead of guessing with sleeps).
    var waitingCount: Int { state.withLock { $0.waiting.count } }
    /// Lanes running, a request run at once included.
    var laneCount: Int { state.withLock { $0.lanes } }

    /// The rows of one request's execution, run alone or as part of a batch on a connection from
    /// `lease`, whose `Execute` gets every request's values and answers each request's rows, in order.
    func run(_ values: [StatementValue], lease: @escaping Lease) async throws -> [any SQLRow] {
        let deadline = ContinuousClock.now + .nanoseconds(Int64(timeoutSeconds * 1e9))
        // The lane runs on this request's loop, where its connection and its requests live.
        let executor = MultiThreadedEventLoopGroup.currentEventLoop.flatMap(EventLoopExecutor.forLoop)
        let startLane = { _ = Task(executorPreference: executor) { await self.lane(lease) } }
        if state.withLock({ $0.parked.isEmpty && $0.takeLane(limit: maxLanes) }) {
            // A free lane: run at once, in this task, then pass the lane on to what waits.
            let outcome = Outcome()
            do {
                leases.add(1, ordering: .relaxed)
                _ = try await lease(Self.seconds(until: deadline)) { execute in
                    outcome.result = await Self.outcomes(of: [values], deadline: deadline, execute: execute)[0]
                    return true
                }
            } catch {
                outcome.result = .failure(error)
            }
            if state.withLock({ $0.keepLaneForWaiters() }) { startLane() }
            return try outcome.get()
        }
        return try await withCheckedThrowingContinuation { continuation in
            let (parkedLane, startsLane) = state.withLock { state -> (ParkedLane?, Bool) in
                state.waiting.append(Waiter(values: values, continuation: continuation, deadline: deadline))
                if let parked = state.parked.popLast() { return (parked, false) }
                // A lane may have retired since the check above.
                return (nil, state.takeLane(limit: maxLanes))
            }
            parkedLane?.continuation.resume()
            if startsLane { startLane() }
        }
    }

    /// Leases a connection for what waits, runs batches on it, and leases again after
    /// `batchesPerLease` or a failed batch, until nothing waits.
    private func lane(_ lease: Lease) async {
        let retired = LaneRetirement()
        while let deadline = firstDeadline() {
            do {
                leases.add(1, ordering: .relaxed)
                let goesOn = try await lease(Self.seconds(until: deadline)) { execute in
                    let goesOn = await self.runBatches(execute)
                    if !goesOn { retired.mark() }
                    return goesOn
                }
                guard goesOn else { return }
            } catch is DatabaseTimeoutError {
                // No connection within the first request's time: that request has had its answer
                // (`firstDeadline` fails it), and the requests behind it still have theirs.
                guard !retired.marked else { return }
            } catch {
                // A lease that failed after the lane retired must not touch the queue again.
                guard !retired.marked else { return }
                // The pool failed (it is closed, say): what waits now shares the failure.
                guard let batch = nextBatch() else { return }
                for waiter in batch { waiter.continuation.resume(throwing: error) }
            }
        }
    }

    /// Batches on one leased connection. False once the lane has retired (nothing waits).
    private func runBatches(_ execute: @escaping Execute) async -> Bool {
        for _ in 0..<batchesPerLease {
            guard let batch = await nextBatchLingering() else { return false }
            if batch.count > 1 { requestsRunInBatches.add(batch.count, ordering: .relaxed) }
            let results = await Self.outcomes(of: batch.map(\.values), deadline: batch[0].deadline, execute: execute)
            for (waiter, result) in zip(batch, results) {
                waiter.continuation.resume(with: result)
            }
            // A failure may have closed the connection (a timeout does): lease a fresh one.
            if results.contains(where: { if case .failure = $0 { true } else { false } }) { return true }
        }
        return true
    }

    /// What waits; when nothing does, what arrives within `lingerSeconds`, the lane keeping its
    /// connection meanwhile (under load the next request is microseconds away, and a lane that
    /// retired would cost the next one a lease, and PostgresNIO an idle timer); nil after
    /// retiring the lane.
    private func nextBatchLingering() async -> [Waiter]? {
        if let batch = nextBatch(retireIfEmpty: false) { return batch }
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? MultiThreadedEventLoopGroup.singleton.any()
        await withCheckedContinuation { continuation in
            let id: UInt64? = state.withLock { state in
                guard state.waiting.isEmpty else { return nil }
                state.parkings &+= 1
                state.parked.append(ParkedLane(id: state.parkings, continuation: continuation))
                return state.parkings
            }
            guard let id else { return continuation.resume() }
            loop.scheduleTask(in: .nanoseconds(Int64(lingerSeconds * 1e9))) {
                let parked = self.state.withLock { state -> ParkedLane? in
                    guard let index = state.parked.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.parked.remove(at: index)
                }
                parked?.continuation.resume()
            }
        }
        return nextBatch()
    }

    /// The deadline of the request that waited longest, after failing those whose time ran out,
    /// or nil after retiring the lane.
    private func firstDeadline() -> ContinuousClock.Instant? {
        let now = ContinuousClock.now
        let (deadline, expired) = state.withLock { state in
            let expired = state.removeExpired(now: now)
            return (state.keepLaneForWaiters() ? state.waiting.first?.deadline : nil, expired)
        }
        failExpired(expired)
        return deadline
    }

    private func failExpired(_ expired: [Waiter]) {
        for waiter in expired {
            waiter.continuation.resume(throwing: DatabaseTimeoutError(seconds: timeoutSeconds))
        }
    }

    /// What waits, up to `maxBatch`, after failing the requests whose time ran out while they
    /// waited; or nil after retiring the lane, when nothing waits. Retiring under the same lock
    /// as the empty queue is seen means no request can queue behind a lane that is leaving.
    private func nextBatch(retireIfEmpty: Bool = true) -> [Waiter]? {
        let now = ContinuousClock.now
        let (batch, expired): ([Waiter]?, [Waiter]) = state.withLock { state in
            let expired = state.removeExpired(now: now)
            guard retireIfEmpty ? state.keepLaneForWaiters() : !state.waiting.isEmpty else { return (nil, expired) }
            let batch = Array(state.waiting.prefix(maxBatch))
            state.waiting.removeFirst(batch.count)
            return (batch, expired)
        }
        failExpired(expired)
        return batch
    }

    private static func seconds(until deadline: ContinuousClock.Instant) -> Double {
        let left = deadline - .now
        return max(0.001, Double(left.components.seconds) + Double(left.components.attoseconds) * 1e-18)
    }

    /// Each request's outcome. A batch that PostgreSQL refused for what one request may have
    /// caused (a constraint it broke, a deadlock) committed nothing; its two halves run again,
    /// pipelined on the lane's connection, and so on down to single requests, so that each request
    /// gets its own answer and one bad request among 64 costs about a dozen statements rather than
    /// 64. Any other failure (the database is unreachable, the statement does not prepare, which
    /// closed the connection, the rows could not be read) is every request's.
    private static func outcomes(
        of requests: [[StatementValue]], deadline: ContinuousClock.Instant, execute: @escaping Execute
    ) async -> [Result<[any SQLRow], any Error>] {
        do {
            let rows = try await execute(requests, seconds(until: deadline))
            guard rows.count == requests.count else {
                return Array(repeating: .failure(BatchAnswerMismatch(requests: requests.count, answers: rows.count)), count: requests.count)
            }
            return rows.map { .success($0) }
        } catch let error as PSQLError where requests.count > 1 && error.serverInfo?[.sqlState] != nil
            && DatabaseFailure(error) != .unavailable && !PostgresBackend.failedToPrepare(error) {
            let middle = requests.count / 2
            async let first = outcomes(of: Array(requests[..<middle]), deadline: deadline, execute: execute)
            async let second = outcomes(of: Array(requests[middle...]), deadline: deadline, execute: execute)
            return await first + second
        } catch {
            return Array(repeating: .failure(error), count: requests.count)
        }
    }
}

/// The outcome of a request run at once, set inside its lease.
private final class Outcome: Sendable {
    private let value = Mutex<Result<[any SQLRow], any Error>?>(nil)
    var result: Result<[any SQLRow], any Error>? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }

    func get() throws -> [any SQLRow] {
        try (result ?? .failure(BatchAnswerMismatch(requests: 1, answers: 0))).get()
    }
}

/// Whether a lane has retired, seen from outside its lease.
private final class LaneRetirement: Sendable {
    private let retired = Atomic<Bool>(false)
    func mark() { retired.store(true, ordering: .relaxed) }
    var marked: Bool { retired.load(ordering: .relaxed) }
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
    /// Lanes (executions in flight, connections held) of one statement per loop: a loop's other
    /// statements keep the rest of its share of the pool.
    static let maxLanes = 2
    static let maxBatch = 64
    static let batchesPerLease = 8
    /// Under load the next request reaches a loop's batcher within a turn of the loop, a few ms.
    static let lingerSeconds = 0.010

    private struct Key: Hashable {
        let loop: ObjectIdentifier?
        let statement: ObjectIdentifier
    }

    private let batchers = Mutex<[Key: StatementBatcher]>([:])

    var requestsRunInBatches: Int {
        batchers.withLock { $0.values.reduce(0) { $0 + $1.requestsRunInBatches.load(ordering: .relaxed) } }
    }

    var leases: Int {
        batchers.withLock { $0.values.reduce(0) { $0 + $1.leases.load(ordering: .relaxed) } }
    }

    let timeoutSeconds: Double

    init(timeoutSeconds: Double) {
        self.timeoutSeconds = timeoutSeconds
    }

    func batcher(for statement: Any.Type, loop: (any EventLoop)?) -> StatementBatcher {
        let key = Key(loop: loop.map { ObjectIdentifier($0) }, statement: ObjectIdentifier(statement))
        return batchers.withLock { batchers in
            if let batcher = batchers[key] { return batcher }
            let batcher = StatementBatcher(
                maxLanes: Self.maxLanes, maxBatch: Self.maxBatch, batchesPerLease: Self.batchesPerLease,
                lingerSeconds: Self.lingerSeconds, timeoutSeconds: timeoutSeconds
            )
            batchers[key] = batcher
            return batcher
        }
    }
}
