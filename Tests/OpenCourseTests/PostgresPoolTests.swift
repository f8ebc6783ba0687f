import NIOCore
import NIOPosix
import PostgresNIO
import Testing
@testable import OpenCourse

@Suite("PostgreSQL pool")
struct PostgresPoolTests {
    /// A query made on one of the server's event loops (where requests run) leases a connection
    /// that lives on that loop, so its reply is read and resumed on the same thread.
    @Test func queriesLeaseAConnectionOnTheirOwnEventLoop() async throws {
        try await TestDatabase.postgres.withFreshDatabase(poolSize: 2 * System.coreCount) { backend in
            let pool = try #require(backend.sql as? PostgresClientSQLDatabase)
            var loopsSeen = 0
            for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
                let executor = try #require(EventLoopExecutor.forLoop(loop))
                loopsSeen += 1
                for _ in 0..<10 {
                    let onSameLoop = try await withTaskExecutorPreference(executor) {
                        try await pool.withLeasedConnection { connection in
                            _ = try await connection.query("SELECT 1", logger: testLogger)
                            return connection.eventLoop === loop
                        }
                    }
                    #expect(onSameLoop)
                }
            }
            #expect(loopsSeen == System.coreCount)
        }
    }

    /// Idle connections close after `DatabaseLocation.idleTimeout` (the memory of the pool's
    /// timers is kept that long), and the pool keeps no minimum: with one, PostgresNIO traps when a
    /// request waits while connections are replaced after PostgreSQL restarts.
    @Test func idleConnectionsCloseSoonAndThePoolKeepsNoMinimum() async throws {
        let location = try await TestDatabase.postgres.makeLocation()
        guard case .postgres(let settings) = location else { throw PostgresTestServer.NotConfigured() }
        let backend = try await location.open(poolSize: 3, logger: testLogger)
        let members = try #require(backend as? PostgresBackend).clients.members
        #expect(members.allSatisfy { $0.minimumConnections == 0 })
        @Sendable func connections() async throws -> Int {
            try await PostgresTestServer.withAdminConnection { connection in
                let rows = try await connection.query(
                    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = \(settings.database)", logger: testLogger
                )
                var count = 0
                for try await row in rows { count = try row.decode(Int.self) }
                return count
            }
        }
        try await backend.whileRunning(logger: testLogger) { backend in
            try await withThrowingTaskGroup { group in
                for _ in 0..<3 { group.addTask { try await backend.sql.raw("SELECT pg_sleep(0.2)").run() } }
                try await group.waitForAll()
            }
            #expect(try await connections() > 0)
            // PostgresNIO's default would keep them for 60 s.
            try await CachingTests.eventually(within: .seconds(20)) { try await connections() == 0 }
        }
    }

    /// A statement the deadline gives up on closes its connection: the pool then lends out a
    /// fresh one instead of one that may never answer (PostgresNIO does not stop a statement on
    /// cancellation, so without this the next query waited for the abandoned one).
    @Test func aStatementPastItsDeadlineClosesItsConnection() async throws {
        let backend = try await TestDatabase.postgres.makeLocation().open(poolSize: 1, timeoutSeconds: 2, logger: testLogger)
        try await backend.whileRunning(logger: testLogger) { backend in
            @Sendable func backendPID() async throws -> Int {
                let row = try #require(try await backend.sql.raw("SELECT pg_backend_pid() AS pid").first())
                return try row.decode(column: "pid", as: Int.self)
            }
            // The first connection may take longer than the 2 s to open while the machine is busy.
            var first: Int?
            try await CachingTests.eventually(within: .seconds(30)) {
                first = try? await backendPID()
                return first != nil
            }
            let before = try #require(first)
            await #expect(throws: DatabaseTimeoutError.self) {
                try await backend.sql.raw("SELECT pg_sleep(60)").run()
            }
            // On a new connection, long before the abandoned sleep (which held the only connection)
            // would end; attempts may time out while the machine is busy opening it.
            try await CachingTests.eventually(within: .seconds(30)) {
                guard let pid = try? await backendPID() else { return false }
                return pid != before
            }
        }
    }

    /// `DB_POOL_SIZE` is the instance's total: split over the loops, never more, at least one each.
    @Test(arguments: [1, 2, 3, 10, 11])
    func poolSizeIsSplitOverTheLoops(total: Int) {
        var configuration = PostgresClient.Configuration(
            host: "127.0.0.1", username: "nobody", password: nil, database: nil, tls: .disable
        )
        configuration.options.maximumConnections = total
        configuration.options.minimumConnections = total
        let members = LoopAffineClients(configuration: configuration, logger: testLogger).members
        let shares = members.map(\.maximumConnections)
        #expect(shares.reduce(0, +) == total)
        // A minimum is split the same way.
        #expect(members.map(\.minimumConnections) == shares)
        #expect(shares.count == min(total, System.coreCount))
        #expect(shares.allSatisfy { $0 >= 1 } && (shares.max() ?? 0) - (shares.min() ?? 0) <= 1, "\(shares)")
    }

    /// With fewer connections than loops, the loops without a share lease from the others in
    /// turn (not all from the first); off the loops, from the first.
    @Test func loopsBeyondThePoolSizeShareInTurn() {
        var configuration = PostgresClient.Configuration(
            host: "127.0.0.1", username: "nobody", password: nil, database: nil, tls: .disable
        )
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        for total in 1...(loops.count + 1) {
            configuration.options.maximumConnections = total
            let clients = LoopAffineClients(configuration: configuration, logger: testLogger)
            for (index, loop) in loops.enumerated() {
                #expect(clients.client(on: loop) === clients.members[index % clients.members.count].client, "total \(total), loop \(index)")
            }
            #expect(clients.client(on: nil) === clients.members[0].client)
        }
    }
}
