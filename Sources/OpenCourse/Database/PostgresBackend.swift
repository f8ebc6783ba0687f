import Logging
import NIOCore
import PostgresKit
import PostgresNIO
import ServiceLifecycle
import SQLKit

/// PostgreSQL through PostgresNIO's `PostgresClient` pool. postgres-kit only offers SQLKit over a
/// single connection, so this adapter leases a pooled connection for each statement.
public struct PostgresBackend: DatabaseBackend {
    public let kind = DatabaseKind.postgres
    let settings: PostgresSettings
    let client: PostgresClient
    let logger: Logger
    let timeoutSeconds: Double
    let metrics: AppMetrics?

    init(
        settings: PostgresSettings, configuration: PostgresClient.Configuration,
        timeoutSeconds: Double, metrics: AppMetrics?, logger: Logger
    ) {
        self.settings = settings
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        self.timeoutSeconds = timeoutSeconds
        self.metrics = metrics
    }

    public var sql: any SQLDatabase {
        PostgresClientSQLDatabase(client: client, logger: logger, timeoutSeconds: timeoutSeconds, metrics: metrics)
    }

    public var services: [any Service] { [client] }

    public func withTransaction<Result: Sendable>(
        _ body: @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        do {
            return try await client.withTransaction(logger: logger) { connection in
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
    let client: PostgresClient
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
        let (client, logger, metrics) = (self.client, self.logger, self.metrics)
        try await withDeadline(seconds: timeoutSeconds) {
            metrics?.connectionRequested()
            var leased = false
            do {
                try await client.withConnection { connection in
                    leased = true
                    metrics?.connectionLeased()
                    defer { metrics?.connectionReturned() }
                    try await connection.sql(queryLogLevel: nil, logger: logger).execute(sql: query, onRow)
                }
            } catch {
                if !leased { metrics?.connectionNotLeased() }
                throw error
            }
        }
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await client.withConnection { connection in
            try await closure(connection.sql(queryLogLevel: nil, logger: logger))
        }
    }
}
