import Foundation
import SQLKit
import Synchronization
import Testing
@testable import OpenCourse

/// On PostgreSQL, executions of a `BatchableStatement` that arrive while others are in flight run
/// as one statement; each request must still get exactly its own answer, and a request that
/// breaks a constraint must fail alone.
@Suite("Statement batching on PostgreSQL", .timeLimit(.minutes(2)))
struct StatementBatchingTests {
    private static let requests = 120

    private func withMigratedPostgres(_ body: @Sendable (PostgresBackend) async throws -> Void) async throws {
        try await TestDatabase.postgres.withFreshDatabase(poolSize: 4) { backend in
            try await Migrator(database: backend, logger: testLogger).migrate()
            try await body(try #require(backend as? PostgresBackend))
        }
    }

    private static func user(_ role: Role = .student) -> User {
        let (id, now) = RecordStamp.next()
        return User(id: id, email: "batch-\(id.apiString)@example.com", passwordHash: "not-a-hash", name: nil, role: role, createdAt: now, updatedAt: now)
    }

    @Test func concurrentLookupsEachGetTheirOwnUser() async throws {
        try await withMigratedPostgres { backend in
            let repository = SQLUserRepository(database: backend)
            var users: [User] = []
            for _ in 0..<20 { users.append(try await repository.create(Self.user())) }
            try await Self.expectConcurrentLookups(of: users, id: \.id) { try await repository.find(id: $0) }
            #expect(backend.batchers.requestsRunInBatches > 0)
        }
    }

    @Test func concurrentCourseLookupsEachGetTheirOwnCourse() async throws {
        try await withMigratedPostgres { backend in
            let owner = try await SQLUserRepository(database: backend).create(Self.user(.instructor))
            let repository = SQLCourseRepository(database: backend)
            var courses: [Course] = []
            for index in 0..<20 {
                let (id, now) = RecordStamp.next()
                courses.append(try await repository.create(
                    Course(id: id, title: "Lookup \(index)", description: index % 2 == 0 ? nil : "d", createdBy: owner.id, createdAt: now, updatedAt: now)
                ))
            }
            let before = backend.batchers.requestsRunInBatches
            try await Self.expectConcurrentLookups(of: courses, id: \.id) { try await repository.find(id: $0) }
            #expect(backend.batchers.requestsRunInBatches > before)
        }
    }

    /// `requests` lookups at once, every fifth for an id nobody has: each gets its own record.
    private static func expectConcurrentLookups<Record: Equatable & Sendable>(
        of known: [Record], id: @escaping @Sendable (Record) -> UUID,
        find: @escaping @Sendable (UUID) async throws -> Record?
    ) async throws {
        let answers = try await withThrowingTaskGroup(of: (UUID, Record?).self) { group in
            for index in 0..<requests {
                let wanted = index % 5 == 4 ? UUID() : id(known[index % known.count])
                group.addTask { (wanted, try await find(wanted)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.count == requests)
        for (wanted, record) in answers {
            #expect(record == known.first { id($0) == wanted }, "\(wanted)")
        }
    }

    @Test func aCreationThatBreaksAConstraintFailsAloneAndTheRestOfItsBatchLands() async throws {
        try await withMigratedPostgres { backend in
            let owner = try await SQLUserRepository(database: backend).create(Self.user(.instructor))
            let courses = SQLCourseRepository(database: backend)
            let attempts: [Course] = (0..<Self.requests).map { index in
                let (id, now) = RecordStamp.next()
                return Course(
                    id: id, title: "Batch \(index) ✓", description: index % 3 == 0 ? nil : "about \(index)",
                    // Every tenth names an owner who does not exist: a foreign key violation.
                    createdBy: index % 10 == 9 ? UUID() : owner.id, createdAt: now, updatedAt: now
                )
            }
            let outcomes = await withTaskGroup(of: (Course, Bool).self) { group in
                for course in attempts {
                    group.addTask {
                        do {
                            _ = try await courses.create(course)
                            return (course, true)
                        } catch RepositoryError.missingReference {
                            return (course, false)
                        } catch {
                            Issue.record("unexpected \(error)")
                            return (course, false)
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            for (course, landed) in outcomes {
                #expect(landed == (course.createdBy == owner.id), "\(course.title)")
                #expect(try await courses.find(id: course.id) == (landed ? course : nil), "\(course.title)")
            }
            #expect(backend.batchers.requestsRunInBatches > 0)
        }
    }

    @Test func repeatedPairsInOneBatchEnrollOnce() async throws {
        try await withMigratedPostgres { backend in
            let users = SQLUserRepository(database: backend)
            let owner = try await users.create(Self.user(.instructor))
            let (courseID, now) = RecordStamp.next()
            _ = try await SQLCourseRepository(database: backend).create(
                Course(id: courseID, title: "Pairs", description: nil, createdBy: owner.id, createdAt: now, updatedAt: now)
            )
            var students: [User] = []
            for _ in 0..<10 { students.append(try await users.create(Self.user())) }
            let enrollments = SQLEnrollmentRepository(database: backend)
            let known = students
            // Half of them were enrolled before: their repeats must come back as that enrollment.
            var earlier: [UUID: UUID] = [:]
            for student in known.prefix(5) {
                let (id, now) = RecordStamp.next()
                let first = try #require(try await enrollments.enroll(Enrollment(id: id, userID: student.id, courseID: courseID, enrolledAt: now)))
                #expect(first.created)
                earlier[student.id] = first.enrollment.id
            }
            let before = earlier
            // Each student enrolls four times at once, and one attempt is for a course that does not exist.
            let outcomes = try await withThrowingTaskGroup(of: (UUID, (enrollment: Enrollment, created: Bool)?).self) { group in
                for attempt in 0..<(known.count * 4) {
                    let student = known[attempt % known.count]
                    group.addTask {
                        let (id, now) = RecordStamp.next()
                        let course = attempt == 7 ? UUID() : courseID
                        return (student.id, try await enrollments.enroll(Enrollment(id: id, userID: student.id, courseID: course, enrolledAt: now)))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter { $0.1 == nil }.count == 1)
            for student in known {
                let mine = outcomes.filter { $0.0 == student.id }.compactMap(\.1)
                #expect(mine.filter(\.created).count == (before[student.id] == nil ? 1 : 0), "\(student.id)")
                #expect(Set(mine.map(\.enrollment.id)).count == 1, "\(student.id)")
                if let earlierID = before[student.id] { #expect(mine.first?.enrollment.id == earlierID) }
                #expect(mine.allSatisfy { $0.enrollment.userID == student.id && $0.enrollment.courseID == courseID })
            }
            let count = try await backend.sql.raw("SELECT COUNT(*) AS n FROM enrollments").first()
            #expect(try count?.decode(column: "n", as: Int.self) == known.count)
            #expect(backend.batchers.requestsRunInBatches > 0)
        }
    }
}

/// The batcher's bookkeeping, with an `execute` that records what it is given: deadlines of
/// waiting requests, failures that are everyone's, and the turn coming back once all is done.
/// The request in flight holds on until the others have queued, so no test depends on how fast
/// tasks start.
@Suite("Statement batcher", .timeLimit(.minutes(1)))
struct StatementBatcherTests {
    /// Calls of `execute`: the number of requests in each and the seconds it was given.
    final class Calls: Sendable {
        let calls = Mutex<[(size: Int, seconds: Double)]>([])
        func record(_ count: Int, _ seconds: Double) { calls.withLock { $0.append((count, seconds)) } }
        var sizes: [Int] { calls.withLock { $0.map(\.size) } }
        var seconds: [Double] { calls.withLock { $0.map(\.seconds) } }
    }

    private static func key(_ request: [StatementValue]) -> String {
        if case .text(let text)? = request.first { return text ?? "" }
        return ""
    }

    /// A lease that always gets a connection at once.
    private static func lease(_ execute: @escaping StatementBatcher.Execute) -> StatementBatcher.Lease {
        { _, lane in await lane(execute) }
    }

    /// An `execute` that records its calls; a call with the request `key` holds on until `count`
    /// requests wait behind it.
    private static func recording(
        _ calls: Calls, holding key: String, until count: Int, on batcher: StatementBatcher
    ) -> StatementBatcher.Execute {
        { requests, seconds in
            calls.record(requests.count, seconds)
            if requests.contains(where: { Self.key($0) == key }) { try await Self.untilWaiting(count, on: batcher) }
            return requests.map { _ in [] }
        }
    }

    /// Until `execute` has been called `count` times (at most 20 s).
    private static func untilCalled(_ count: Int, _ calls: Calls) async throws {
        for _ in 0..<2_000 where calls.sizes.count < count {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Until `count` requests wait behind the one in flight (at most 20 s).
    private static func untilWaiting(_ count: Int, on batcher: StatementBatcher) async throws {
        for _ in 0..<2_000 where batcher.waitingCount < count {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func aRequestWaitingLongerThanTheTimeoutGetsATimeoutAndTheTurnComesBack() async throws {
        let batcher = StatementBatcher(maxLanes: 1, maxBatch: 8, batchesPerLease: 8, lingerSeconds: 0, timeoutSeconds: 0.1)
        let calls = Calls()
        let execute: StatementBatcher.Execute = { requests, seconds in
            calls.record(requests.count, seconds)
            if requests.contains(where: { Self.key($0) == "slow" }) {
                try await Self.untilWaiting(1, on: batcher)
                try await Task.sleep(for: .milliseconds(300))  // past the waiter's 0.1 s
            }
            return requests.map { _ in [] }
        }
        async let slow = batcher.run([.text("slow")], lease: Self.lease(execute))
        try await Self.untilCalled(1, calls)
        await #expect(throws: DatabaseTimeoutError.self) {
            _ = try await batcher.run([.text("waits")], lease: Self.lease(execute))
        }
        _ = try await slow
        // Nothing is left in flight: the next request runs at once, alone.
        _ = try await batcher.run([.text("after")], lease: Self.lease(execute))
        #expect(calls.sizes == [1, 1])
    }

    /// A batch runs within what is left of its first request's timeout, not a fresh one: the
    /// request's answer (a 503 at worst) still comes within `DB_TIMEOUT_SECONDS`.
    @Test func aBatchGetsOnlyTheTimeItsFirstRequestHasLeft() async throws {
        // 30 s, not 3: on a starved machine the waiter's 3 s ran out before the slow batch ended.
        let batcher = StatementBatcher(maxLanes: 1, maxBatch: 8, batchesPerLease: 8, lingerSeconds: 0, timeoutSeconds: 30)
        let calls = Calls()
        let execute: StatementBatcher.Execute = { requests, seconds in
            calls.record(requests.count, seconds)
            if requests.contains(where: { Self.key($0) == "slow" }) {
                try await Self.untilWaiting(1, on: batcher)
                try await Task.sleep(for: .milliseconds(400))
            }
            return requests.map { _ in [] }
        }
        async let slow = batcher.run([.text("slow")], lease: Self.lease(execute))
        try await Self.untilCalled(1, calls)
        _ = try await batcher.run([.text("waits")], lease: Self.lease(execute))
        _ = try await slow
        let given = calls.seconds
        #expect(given.count == 2)
        #expect(given.first.map { $0 > 29 } == true, "\(given)")
        // The waiter waited at least 400 ms: at most 29.6 s of its 30 were left, not a fresh 30.
        #expect(given.last.map { $0 < 29.65 && $0 > 0 } == true, "\(given)")
    }

    @Test func anUnavailableDatabaseFailsTheWholeBatchWithoutRerunningIt() async throws {
        let batcher = StatementBatcher(maxLanes: 1, maxBatch: 8, batchesPerLease: 8, lingerSeconds: 0, timeoutSeconds: 30)
        let calls = Calls()
        let execute: StatementBatcher.Execute = { requests, seconds in
            calls.record(requests.count, seconds)
            if requests.contains(where: { Self.key($0) == "first" }) {
                try await Self.untilWaiting(5, on: batcher)
                return [[]]
            }
            throw DatabaseTimeoutError(seconds: 30)
        }
        async let first = batcher.run([.text("first")], lease: Self.lease(execute))
        try await Self.untilCalled(1, calls)
        let failures = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<5 {
                group.addTask {
                    do {
                        _ = try await batcher.run([.text("waiter \(index)")], lease: Self.lease(execute))
                        return false
                    } catch {
                        return error is DatabaseTimeoutError
                    }
                }
            }
            return await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        _ = try await first
        #expect(failures == 5)
        // The first alone, then the five waiters as one batch, not rerun one by one.
        #expect(calls.sizes == [1, 5])
    }
    /// Consecutive batches share a lease: PostgresNIO arms a timer each time a connection goes
    /// back idle, whose memory it keeps for seconds. After `batchesPerLease` the lane leases again,
    /// so the loop's other statements get a turn.
    @Test func consecutiveBatchesShareALeaseUpToTheLimit() async throws {
        let batcher = StatementBatcher(maxLanes: 1, maxBatch: 8, batchesPerLease: 3, lingerSeconds: 0, timeoutSeconds: 30)
        let calls = Calls()
        let leases = Atomic<Int>(0)
        let execute: StatementBatcher.Execute = { requests, seconds in
            calls.record(requests.count, seconds)
            // Each request but the last is still in flight when the next one arrives.
            if !requests.contains(where: { Self.key($0) == "4" }) { try await Self.untilWaiting(1, on: batcher) }
            return requests.map { _ in [] }
        }
        let lease: StatementBatcher.Lease = { _, lane in
            leases.add(1, ordering: .relaxed)
            return await lane(execute)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<5 {
                group.addTask { _ = try await batcher.run([.text("\(index)")], lease: lease) }
                try await Self.untilCalled(index + 1, calls)
            }
            try await group.waitForAll()
        }
        #expect(calls.sizes == [1, 1, 1, 1, 1])
        // The first request ran at once on a lease of its own; then a lane took three batches on
        // one lease and the last on the next.
        #expect(leases.load(ordering: .relaxed) == 3)
        #expect(batcher.leases.load(ordering: .relaxed) == 3)
    }

    /// The pool fails a lane's lease (it has closed, say): the requests that wait get its error,
    /// and the lane retires, so the next request starts a lane of its own instead of queueing
    /// behind a dead one. A request run at once gets its own lease's error.
    @Test func aFailedLeaseFailsWhatWaitsAndTheLaneRetires() async throws {
        struct PoolClosed: Error {}
        let batcher = StatementBatcher(maxLanes: 1, maxBatch: 8, batchesPerLease: 8, lingerSeconds: 0, timeoutSeconds: 30)
        await #expect(throws: PoolClosed.self) {
            _ = try await batcher.run([.text("alone")], lease: { _, _ in throw PoolClosed() })
        }
        let calls = Calls()
        let leases = Atomic<Int>(0)
        let execute = Self.recording(calls, holding: "busy", until: 1, on: batcher)
        // The lane's lease, the second, fails.
        let lease: StatementBatcher.Lease = { _, lane in
            guard leases.add(1, ordering: .relaxed).newValue == 2 else { return await lane(execute) }
            throw PoolClosed()
        }
        async let busy = batcher.run([.text("busy")], lease: lease)
        try await Self.untilCalled(1, calls)
        await #expect(throws: PoolClosed.self) {
            _ = try await batcher.run([.text("waits")], lease: lease)
        }
        _ = try await busy
        for _ in 0..<2_000 where batcher.laneCount > 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(batcher.laneCount == 0)
        let rows = try await batcher.run([.text("next")], lease: lease)
        #expect(rows.isEmpty)
        #expect(calls.sizes == [1, 1])
        #expect(leases.load(ordering: .relaxed) == 3)
        #expect(batcher.waitingCount == 0)
    }

    /// A lane leases within the time of the request that waited longest. When that runs out, only
    /// that request gets the timeout: one that came later still has its time, and the lane leases
    /// again for it.
    @Test func aLeaseThatTimesOutFailsOnlyTheRequestsWhoseTimeRanOut() async throws {
        // 9 s, not less: beside two busy loops (half speed) one of these requests ran out of a
        // 3 s budget, with wake-ups late by seconds.
        let batcher = StatementBatcher(maxLanes: 1, maxBatch: 8, batchesPerLease: 8, lingerSeconds: 0, timeoutSeconds: 9)
        let calls = Calls()
        let leases = Atomic<Int>(0)
        let execute = Self.recording(calls, holding: "busy", until: 2, on: batcher)
        // The lane's first lease finds no connection within the seconds it was given.
        let lease: StatementBatcher.Lease = { seconds, lane in
            guard leases.add(1, ordering: .relaxed).newValue == 2 else { return await lane(execute) }
            try await Task.sleep(for: .seconds(seconds))
            throw DatabaseTimeoutError(seconds: seconds)
        }
        async let busy = batcher.run([.text("busy")], lease: lease)
        try await Self.untilCalled(1, calls)
        let early = Task { try await batcher.run([.text("early")], lease: lease) }
        try await Self.untilWaiting(1, on: batcher)
        // 6 s later: "early" has 3 s left, "late" all of its 9.
        try await Task.sleep(for: .seconds(6))
        let late = try await batcher.run([.text("late")], lease: lease)
        #expect(late.isEmpty)
        await #expect(throws: DatabaseTimeoutError.self) { _ = try await early.value }
        _ = try await busy
        #expect(leases.load(ordering: .relaxed) == 3)
        #expect(calls.sizes == [1, 1])
    }

    /// A lane that found nothing waiting keeps its connection a moment: under load the next
    /// request is a loop's turn away, and a lane that retired would cost it a lease of its own.
    /// After the moment the lane retires, and the next request runs at once on a lease of its own.
    @Test func aLaneKeepsItsLeaseAMomentForWhatComesNext() async throws {
        // Long enough for the third request to come within it on a loaded machine.
        let batcher = StatementBatcher(maxLanes: 1, maxBatch: 8, batchesPerLease: 8, lingerSeconds: 5, timeoutSeconds: 30)
        let calls = Calls()
        let leases = Atomic<Int>(0)
        let execute = Self.recording(calls, holding: "first", until: 1, on: batcher)
        let lease: StatementBatcher.Lease = { _, lane in
            leases.add(1, ordering: .relaxed)
            return await lane(execute)
        }
        // The first runs at once; the second waits for it, and a lane serves it.
        async let first = batcher.run([.text("first")], lease: lease)
        try await Self.untilCalled(1, calls)
        _ = try await batcher.run([.text("second")], lease: lease)
        _ = try await first
        // The lane now lingers on its lease: the third needs none of its own.
        _ = try await batcher.run([.text("third")], lease: lease)
        #expect(leases.load(ordering: .relaxed) == 2)
        for _ in 0..<2_000 where batcher.laneCount > 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(batcher.laneCount == 0)
        _ = try await batcher.run([.text("fourth")], lease: lease)
        #expect(leases.load(ordering: .relaxed) == 3)
        #expect(calls.sizes == [1, 1, 1, 1])
    }
}
