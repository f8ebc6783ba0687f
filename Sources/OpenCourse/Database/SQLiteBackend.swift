import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SQLiteKit
import SQLiteNIO
import SQLKit

/// SQLite through one connection, which serialises statements. Good for a single process: the
/// embedded default and tests.
public struct SQLiteBackend: DatabaseBackend {
    public let kind = DatabaseKind.sqlite
    let connection: SQLiteConnection

    /// Opens (creating if needed) the database; `path` ":memory:" gives a private in-memory one.
    public static func open(path: String, logger: Logger) async throws -> SQLiteBackend {
        let storage: SQLiteConnection.Storage = path == ":memory:" ? .memory : .file(path: path)
        let connection = try await SQLiteConnection.open(
            storage: storage, threadPool: .singleton, logger: logger,
            on: MultiThreadedEventLoopGroup.singleton.any()
        )
        let backend = SQLiteBackend(connection: connection)
        do {
            // Foreign keys are off by default in SQLite and are per connection.
            try await backend.sql.raw("PRAGMA foreign_keys = ON").run()
            try await backend.sql.raw("PRAGMA busy_timeout = 5000").run()
            if path != ":memory:" {
                try await backend.sql.raw("PRAGMA journal_mode = WAL").run()
                try await backend.sql.raw("PRAGMA synchronous = FULL").run()
            }
        } catch {
            try? await connection.close()
            throw error
        }
        return backend
    }

    public var sql: any SQLDatabase { connection.sql(encoder: .init(), decoder: .init(), queryLogLevel: nil) }

    public var services: [any Service] { [SQLiteCloser(connection: connection)] }

    /// Only used before serving (migrations, CLI tasks): the connection is shared, so statements of
    /// concurrent requests would otherwise join the transaction.
    public func withTransaction<Result: Sendable>(
        _ body: @Sendable (any SQLDatabase) async throws -> Result
    ) async throws -> Result {
        try await sql.raw("BEGIN IMMEDIATE").run()
        do {
            let result = try await body(sql)
            try await sql.raw("COMMIT").run()
            return result
        } catch {
            try? await sql.raw("ROLLBACK").run()
            throw error
        }
    }
}

/// Closes the connection at shutdown; sqlite-nio asserts if a connection is released open.
struct SQLiteCloser: Service {
    let connection: SQLiteConnection

    func run() async throws {
        try? await gracefulShutdown()
        // The future-based close: when another service failed, this task is cancelled, and the
        // async `close()` then throws without closing (NIOThreadPool checks for cancellation).
        try await connection.close().get()
    }
}
