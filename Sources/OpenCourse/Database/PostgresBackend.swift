import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import PostgresNIO
import ServiceLifecycle
import SQLKit

/// PostgreSQL through PostgresNIO's `PostgresClient` pool. postgres-kit only offers SQLKit over a
/// single connection, so this adapter leases a pooled connection for each statement.
public struct PostgresBackend: DatabaseBackend {
    public let kind = DatabaseKind.postgres
    let settings: PostgresSettings
    let clients: LoopAffineClients
    let logger: Logger
    let timeoutSeconds: Double
    let metrics: AppMetrics?
    let batchers: StatementBatchers

    init(
        settings: PostgresSettings, configuration: PostgresClient.Configuration,
        timeoutSeconds: Double, metrics: AppMetrics?, logger: Logger
    ) {
        self.settings = settings
        self.clients = LoopAffineClients(configuration: configuration, logger: logger)
        self.logger = logger
        self.timeoutSeconds = timeoutSeconds
        self.metrics = metrics
        self.batchers = StatementBatchers(timeoutSeconds: timeoutSeconds)
    }

    public var sql: any SQLDatabase { pool }

    private var pool: PostgresClientSQLDatabase {
        PostgresClientSQLDatabase(clients: clients, logger: logger, timeoutSeconds: timeoutSeconds, metrics: metrics)
    }

    public var services: [any Service] { clients.all }

    public func run<Statement: PreparedStatement>(
        _ statement: Statement.Type, _ values: [StatementValue]
    ) async throws -> [any SQLRow] {
        try await execute(NamedStatement<Statement>(values: values))
    }

    public func runBatched<Statement: BatchableStatement>(
        _ statement: Statement.Type, _ values: [StatementValue]
    ) async throws -> [any SQLRow] {
        let batcher = batchers.batcher(for: Statement.self, loop: MultiThreadedEventLoopGroup.currentEventLoop)
        let (pool, logger) = (self.pool, self.logger)
        return try await batcher.run(values) { seconds, lane in
            try await pool.withLeasedConnection(leaseWithin: seconds) { connection in
                await lane { requests, seconds in
                    do {
                        return try await withDeadline(seconds: seconds) {
                            try await PostgresClientSQLDatabase.closingOnCancel(connection) {
                                try await Self.rowsOfEach(requests, of: Statement.self, on: connection, logger: logger)
                            }
                        }
                    } catch let error as DatabaseTimeoutError {
                        // The abandoned statement may still run on the connection: closed now, it
                        // cannot go back to the pool half-used when the lane gives it back.
                        try? await connection.close()
                        throw error
                    }
                }
            }
        }
    }

    /// Each request's rows: a lone request runs the plain statement, several the batch statement,
    /// whose rows go to the requests by their key column.
    private static func rowsOfEach<Statement: BatchableStatement>(
        _ requests: [[StatementValue]], of statement: Statement.Type, on connection: PostgresConnection, logger: Logger
    ) async throws -> [[any SQLRow]] {
        if requests.count == 1 {
            return [try await rows(of: NamedStatement<Statement>(values: requests[0]), on: connection, logger: logger)]
        }
        var rowsOfKey: [UUID: [any SQLRow]] = [:]
        for row in try await rows(of: NamedBatchStatement<Statement>(requests: requests), on: connection, logger: logger) {
            rowsOfKey[try row.decode(column: Statement.keyColumn, as: UUID.self), default: []].append(row)
        }
        return requests.map { request in
            guard case .uuid(let key)? = request.first else { return [] }
            return rowsOfKey[key] ?? []
        }
    }

    private func execute<Statement: PostgresPreparedStatement>(
        _ statement: Statement
    ) async throws -> [any SQLRow] where Statement.Row == PostgresRow {
        let logger = self.logger
        return try await pool.withLeasedConnection { connection in
            try await Self.rows(of: statement, on: connection, logger: logger)
        }
    }

    private static func rows<Statement: PostgresPreparedStatement>(
        of statement: Statement, on connection: PostgresConnection, logger: Logger
    ) async throws -> [any SQLRow] where Statement.Row == PostgresRow {
        do {
            var rows: [any SQLRow] = []
            for try await row in try await connection.execute(statement, logger: logger) {
                rows.append(row.sql())
            }
            return rows
        } catch let error as PSQLError where failedToPrepare(error) {
            // PostgresNIO keeps a failed preparation for the connection's lifetime (a request
            // that came before the migrations would break the statement on that connection for
            // good): close it, and the pool opens a fresh one.
            logger.warning("a statement failed to prepare; closing its connection", metadata: [
                "statement": "\(Statement.name)", "error": "\(RedactedErrorDescription(error))",
            ])
            try? await connection.close()
            throw error
        }
    }

    /// Errors that PostgreSQL raises when it parses or plans a statement (SQLSTATE classes 42,
    /// syntax or undefined objects, and 0A, such as a cached plan whose result type changed).
    static func failedToPrepare(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state.hasPrefix("42") || state.hasPrefix("0A")
    }

    public func withTransaction<Result: Sendable>(
        _ body: @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        do {
            return try await clients.forCurrentLoop.withTransaction(logger: logger) { connection in
                try await body(connection.sql(queryLogLevel: nil, logger: logger))
            }
        } catch let error as PostgresTransactionError {
            // Callers care about why the work failed, not about the wrapper.
            if let cause = error.closureError ?? error.beginError ?? error.commitError { throw cause }
            throw error
        }
    }
}

/// `SQLDatabase` over the pool: every statement runs on a connection leased for its duration,
/// and fails with `DatabaseTimeoutError` when lease and statement take longer than the timeout.
struct PostgresClientSQLDatabase: SQLDatabase {
    let clients: LoopAffineClients
    let logger: Logger
    let timeoutSeconds: Double
    let metrics: AppMetrics?

    var eventLoop: any EventLoop { PostgresClient.defaultEventLoopGroup.any() }
    var version: (any SQLDatabaseReportedVersion)? { nil }
    var dialect: any SQLDialect { PostgresDialect() }
    var queryLogLevel: Logger.Level? { nil }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        eventLoop.makeFutureWithTask {
            try await self.execute(sql: query, onRow)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        let logger = self.logger
        try await withLeasedConnection { connection in
            try await connection.sql(queryLogLevel: nil, logger: logger).execute(sql: query, onRow)
        }
    }

    /// Runs `body` on a pooled connection within the deadline, counting the lease in the metrics.
    func withLeasedConnection<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let client = clients.forCurrentLoop
        return try await withDeadline(seconds: timeoutSeconds) {
            try await leased(from: client, { true }, body)
        }
    }

    /// Runs `body` on a pooled connection leased within `seconds`; `body` itself has no deadline
    /// (a batch lane bounds each of its statements).
    func withLeasedConnection<Result: Sendable>(
        leaseWithin seconds: Double, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let client = clients.forCurrentLoop
        return try await withDeadline(secondsToStart: seconds) { started in
            try await leased(from: client, started, body)
        }
    }

    /// `client` is the caller's loop's: the deadline's task may run on another thread.
    private func leased<Result: Sendable>(
        from client: PostgresClient, _ started: @escaping @Sendable () -> Bool,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let (metrics, seconds) = (self.metrics, self.timeoutSeconds)
        metrics?.connectionRequested()
        var leased = false
        do {
            return try await client.withConnection { connection in
                leased = true
                metrics?.connectionLeased()
                defer { metrics?.connectionReturned() }
                // Leased after the caller stopped waiting: give the connection back unused.
                guard started() else { throw DatabaseTimeoutError(seconds: seconds) }
                return try await Self.closingOnCancel(connection) { try await body(connection) }
            }
        } catch {
            if !leased { metrics?.connectionNotLeased() }
            throw error
        }
    }

    /// A statement the deadline gave up on may never be answered (PostgresNIO does not stop it on
    /// cancellation; a connection a firewall dropped stays silent until TCP gives up, for
    /// minutes). Closing the connection fails the statement now, and the pool opens a fresh one
    /// instead of lending out the dead one.
    static func closingOnCancel<Result: Sendable>(
        _ connection: PostgresConnection, _ body: @Sendable () async throws -> Result
    ) async throws -> Result {
        try await withTaskCancellationHandler {
            try await body()
        } onCancel: {
            let _: EventLoopFuture<Void> = connection.close()
        }
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await clients.forCurrentLoop.withConnection { connection in
            try await closure(connection.sql(queryLogLevel: nil, logger: logger))
        }
    }
}

/// The pool as one `PostgresClient` per event loop, each with its share of the connections, all
/// opened on that loop. Requests run on their HTTP connection's loop (see
/// `RequestObservabilityMiddleware`), so a query leased here is written, answered and resumed on
/// one thread; with a single client, half the replies arrived on the other loop and had to be
/// handed over to the request's thread.
struct LoopAffineClients: Sendable {
    struct Member: Sendable {
        let minimumConnections: Int
        let maximumConnections: Int
        let client: PostgresClient
    }

    let members: [Member]
    /// Every loop of the group to the member it leases from: its own, or, for loops beyond
    /// `DB_POOL_SIZE` (more cores than connections), the members in turn.
    private let memberOfLoop: [ObjectIdentifier: Int]

    /// `configuration.options.maximumConnections` is the total, split over at most that many
    /// loops of NIO's shared group (the one the HTTP server runs on).
    init(configuration: PostgresClient.Configuration, logger: Logger) {
        let total = max(1, configuration.options.maximumConnections)
        let allLoops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        let loops = Array(allLoops.prefix(total))
        members = loops.enumerated().map { index, loop in
            var share = configuration
            share.options.maximumConnections = Self.share(of: total, loop: index, loops: loops.count)
            share.options.minimumConnections = min(
                Self.share(of: configuration.options.minimumConnections, loop: index, loops: loops.count),
                share.options.maximumConnections
            )
            return Member(
                minimumConnections: share.options.minimumConnections,
                maximumConnections: share.options.maximumConnections,
                client: PostgresClient(configuration: share, eventLoopGroup: loop, backgroundLogger: logger)
            )
        }
        memberOfLoop = Dictionary(uniqueKeysWithValues: allLoops.enumerated().map { index, loop in
            (ObjectIdentifier(loop), index % loops.count)
        })
    }

    /// Loop `loop`'s part of `total`: equal parts, the first loops taking one more of what is left.
    private static func share(of total: Int, loop: Int, loops: Int) -> Int {
        total / loops + (loop < total % loops ? 1 : 0)
    }

    /// Each client is a service that must run for its connections to open.
    var all: [any Service] { members.map(\.client) }

    /// The client for the calling thread's loop; off the loops (start-up, commands), the first.
    var forCurrentLoop: PostgresClient { client(on: MultiThreadedEventLoopGroup.currentEventLoop) }

    func client(on loop: (any EventLoop)?) -> PostgresClient {
        guard let loop, let index = memberOfLoop[ObjectIdentifier(loop)] else { return members[0].client }
        return members[index].client
    }
}

/// A `PreparedStatement` as PostgresNIO prepares it: by name, once per connection.
struct NamedStatement<Statement: PreparedStatement>: PostgresPreparedStatement {
    typealias Row = PostgresRow
    /// The qualified type name (`OpenCourse.SQLUserRepository.UserByID`): unique, and within
    /// PostgreSQL's 63 bytes for an identifier (a test holds every statement to both).
    static var name: String { String(reflecting: Statement.self) }
    static var sql: String { Statement.sql }
    let values: [StatementValue]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .uuid(let value): bindings.append(value)
            case .text(let value?): bindings.append(value)
            case .text(nil): bindings.appendNull()
            case .timestamp(let value): bindings.append(value)
            }
        }
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}
