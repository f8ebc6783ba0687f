import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization
import Testing
@testable import OpenCourse

/// The two databases every API test runs against.
enum TestDatabase: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// Base URL of the throwaway server started by scripts/test.sh.
    static var postgresAdminURL: String? {
        ProcessInfo.processInfo.environment["OPENCOURSE_TEST_POSTGRES_URL"]
    }

    /// A fresh, empty database for one test: in-memory SQLite, or a new PostgreSQL database.
    func makeLocation() async throws -> DatabaseLocation {
        switch self {
        case .sqlite:
            return .sqlite(path: ":memory:")
        case .postgres:
            return .postgres(try await PostgresTestServer.createDatabase())
        }
    }
}

extension TestDatabase {
    /// Opens a fresh database of this kind, with its services running, for the duration of `body`.
    func withFreshDatabase(poolSize: Int, _ body: @Sendable (any DatabaseBackend) async throws -> Void) async throws {
        let backend = try await makeLocation().open(poolSize: poolSize, timeoutSeconds: testDatabaseTimeoutSeconds, logger: testLogger)
        try await backend.whileRunning(logger: testLogger) { try await body($0) }
    }
}

enum PostgresTestServer {
    struct NotConfigured: Error, CustomStringConvertible {
        var description: String {
            "OPENCOURSE_TEST_POSTGRES_URL is not set: run the suite with scripts/test.sh, which starts PostgreSQL"
        }
    }

    static func adminSettings() throws -> PostgresSettings {
        guard let url = TestDatabase.postgresAdminURL,
              case .postgres(let settings) = try AppConfiguration.database(url, variable: "OPENCOURSE_TEST_POSTGRES_URL")
        else { throw NotConfigured() }
        return settings
    }

    /// Creates a uniquely named database and returns settings that point at it.
    static func createDatabase() async throws -> PostgresSettings {
        var settings = try adminSettings()
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await withAdminConnection { connection in
            // A UTF-8 locale, as production databases have (the server itself runs without one),
            // so that locale-dependent SQL such as LOWER() behaves here as it does there.
            try await connection.query(
                PostgresQuery(unsafeSQL: "CREATE DATABASE \(name) TEMPLATE template0 LC_CTYPE 'C.UTF-8' LC_COLLATE 'C.UTF-8'"),
                logger: testLogger
            )
        }
        settings.database = name
        return settings
    }

    static func withAdminConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let settings = try adminSettings()
        let connection = try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.any(),
            configuration: .init(host: settings.host, port: settings.port, username: settings.username,
                                 password: settings.password, database: settings.database, tls: .disable),
            id: 1, logger: testLogger
        )
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }
}

let testLogger: Logger = {
    var logger = Logger(label: "opencourse-tests")
    logger.logLevel = .critical
    return logger
}()

/// A 32-byte key shared by test apps, so tokens of one app instance verify in another.
let testSecret = Array("test-secret-of-at-least-32-bytes!!".utf8)

/// Tests check behaviour, not speed: on a starved machine (two busy loops beside the suite) 120
/// concurrent creations on a pool of 4 outlasted the 5 s default and came back as timeouts.
/// The tests of timeouts set their own.
let testDatabaseTimeoutSeconds = 60.0

func testConfiguration(_ location: DatabaseLocation) -> AppConfiguration {
    var configuration = AppConfiguration()
    configuration.database = location
    configuration.port = 0
    configuration.bcryptCost = 4
    configuration.jwtSecret = testSecret
    configuration.logLevel = .critical
    configuration.databasePoolSize = 4
    configuration.databaseTimeoutSeconds = testDatabaseTimeoutSeconds
    // Tests share one client address; the rate-limit tests turn these back on.
    configuration.rateLimitRPS = 0
    configuration.registerMaxPerWindow = 100_000
    configuration.loginMaxFailures = 100_000
    return configuration
}

/// Builds the app on a fresh database of the given kind and runs `body` against its router.
func withApp<T: Sendable>(
    _ database: TestDatabase,
    framework: TestingSetup = .router,
    logger: Logger = testLogger,
    configure: (inout AppConfiguration) throws -> Void = { _ in },
    _ body: @Sendable (any TestClientProtocol) async throws -> T
) async throws -> T {
    try await withAppAndDatabase(database, framework: framework, logger: logger, configure: configure) { client, _ in
        try await body(client)
    }
}

/// Like `withApp`, also handing the test the app's database (to make admins, or check rows).
func withAppAndDatabase<T: Sendable>(
    _ database: TestDatabase,
    framework: TestingSetup = .router,
    logger: Logger = testLogger,
    configure: (inout AppConfiguration) throws -> Void = { _ in },
    _ body: @Sendable (any TestClientProtocol, any DatabaseBackend) async throws -> T
) async throws -> T {
    var configuration = testConfiguration(try await database.makeLocation())
    try configure(&configuration)
    let backend = try await configuration.database.open(
        poolSize: configuration.databasePoolSize, timeoutSeconds: configuration.databaseTimeoutSeconds, logger: testLogger
    )
    let app = try await buildApplication(configuration, database: backend, logger: logger)
    return try await app.test(framework) { client in try await body(client, backend) }
}

enum AdminAccounts {
    /// Makes an admin the way `opencourse create-admin` does, then signs in through the API.
    static func makeAdmin(client: any TestClientProtocol, database: any DatabaseBackend) async throws -> String {
        let email = "admin-\(UUID().uuidString.prefix(8))@example.com"
        _ = try await AdminBootstrap(users: SQLUserRepository(database: database), hasher: PasswordHasher(cost: 4, threads: 1))
            .createAdmin(email: email, password: "admin-password")
        let login = try await client.call(.post, "/api/v1/auth/login", json: ["email": email, "password": "admin-password"])
        try #require(login.status == .ok)
        return try #require(login.string("accessToken"))
    }
}

/// Log lines captured in memory, for tests of what the service logs.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    func logger(format: LogFormat = .json) -> Logger {
        let sink = LogSink { [self] line in lines.withLock { $0.append(line) } }
        return Logger(label: "opencourse") { label in StructuredLogHandler(label: label, level: .info, format: format, sink: sink) }
    }

    var all: [String] { lines.withLock { $0 } }

    /// The JSON objects of the lines whose message is `msg`.
    func objects(message: String) -> [[String: String]] {
        all.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: String]
        }.filter { $0["msg"] == message }
    }
}
