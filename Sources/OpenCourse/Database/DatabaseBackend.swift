import Logging
import ServiceLifecycle
import SQLKit

public enum DatabaseKind: String, Sendable {
    case postgres
    case sqlite
}

/// A database the repositories can use: one SQLKit handle for plain statements, transactions for
/// the few operations (migrations) that need several statements to land together, and the
/// services that must run while the database is in use.
public protocol DatabaseBackend: Sendable {
    var kind: DatabaseKind { get }
    var sql: any SQLDatabase { get }
    /// Runs `body` in one transaction, committed when it returns and rolled back when it throws.
    func withTransaction<Result: Sendable>(
        _ body: @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result
    /// The rows of a statement with fixed text and the given values for `$1`…`$n`.
    func run<Statement: PreparedStatement>(_ statement: Statement.Type, _ values: [StatementValue]) async throws -> [any SQLRow]
    /// The same for a statement that the backend may run together with other requests' executions
    /// of it (`BatchableStatement`); the rows are this request's only.
    func runBatched<Statement: BatchableStatement>(_ statement: Statement.Type, _ values: [StatementValue]) async throws -> [any SQLRow]
    /// Long-running services (connection pools, closers) to run alongside the application.
    var services: [any Service] { get }
}

extension DatabaseBackend {
    /// True when a trivial query succeeds within `seconds`: readiness. A pool that cannot connect
    /// keeps the query waiting, so the answer must not wait for it. (A racing `Task.sleep` would
    /// hold its memory until its deadline after every answer: swiftlang/swift#60441.)
    func isReachable(seconds: Double = 2) async -> Bool {
        let sql = self.sql
        return (try? await withDeadline(seconds: seconds) { try await sql.raw("SELECT 1").run() }) != nil
    }

    /// Opens the backend, runs its services while `body` works with it, then shuts them down.
    /// For command-line tasks that use the database without serving HTTP.
    public func whileRunning<Result: Sendable>(
        logger: Logger, _ body: @Sendable (Self) async throws -> Result
    ) async throws -> Result {
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [], logger: logger)
        )
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                let result = try await body(self)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
        }
    }
}
