import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// `opencourse <command>`: serve (default), migrate, create-admin.
public struct OpenCourseCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "opencourse",
        abstract: "The opencourse REST API: register, publish courses, enroll.",
        subcommands: [Serve.self, Migrate.self, CreateAdmin.self],
        defaultSubcommand: Serve.self
    )

    public init() {}
}

/// Flags that override the environment variable of the same meaning.
struct ConfigurationOptions: ParsableArguments {
    @Option(help: "Address to listen on (HOST, default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on (PORT, default 8080).") var port: String?
    @Option(help: "postgres://…, sqlite:PATH or sqlite::memory: (DATABASE_URL).") var databaseURL: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical (LOG_LEVEL).") var logLevel: String?
    @Option(help: "bcrypt cost, 4 to 31 (BCRYPT_COST, default 12).") var bcryptCost: String?
    @Option(help: "Access token lifetime (JWT_TTL_SECONDS, default 3600).") var jwtTtlSeconds: String?
    @Option(help: "PostgreSQL connections per instance (DB_POOL_SIZE, default 10).") var dbPoolSize: String?

    /// The environment with flags applied on top, validated in one place.
    func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AppConfiguration {
        var environment = environment
        let flags: [(String, String?)] = [
            ("HOST", host), ("PORT", port), ("DATABASE_URL", databaseURL), ("LOG_LEVEL", logLevel),
            ("BCRYPT_COST", bcryptCost), ("JWT_TTL_SECONDS", jwtTtlSeconds), ("DB_POOL_SIZE", dbPoolSize),
        ]
        for case let (name, value?) in flags { environment[name] = value }
        return try AppConfiguration(environment: environment)
    }
}

enum Logging {
    /// Sets up stderr logging once per process, at the configured level and format.
    static func bootstrap(_ configuration: AppConfiguration) -> Logger {
        let (level, format) = (configuration.logLevel, configuration.logFormat)
        LoggingSystem.bootstrap { label in
            StructuredLogHandler(label: label, level: level, format: format)
        }
        var logger = Logger(label: "opencourse")
        logger.logLevel = level
        return logger
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending migrations and serve the API.")

    @OptionGroup var options: ConfigurationOptions
    @Flag(help: "Serve without applying pending migrations first.") var noMigrate = false
    @Flag(help: "Keep the memory pages only start-up used resident, instead of giving them back once serving.")
    var keepStartupPages = false

    func run() async throws {
        var configuration = try options.resolve()
        configuration.migrateOnStart = !noMigrate
        configuration.releaseStartupPages = !keepStartupPages
        let logger = Logging.bootstrap(configuration)
        let readiness = Readiness()
        let app = try await buildApplication(configuration, readiness: readiness, logger: logger)
        // The drain comes after the application, so a shutdown reaches it first: the instance
        // reports not-ready and keeps serving before the server stops listening.
        var lifecycle = ServiceGroupConfiguration(
            services: [
                .init(service: app),
                .init(service: ShutdownDrain(readiness: readiness, seconds: configuration.shutdownDrainSeconds, logger: logger)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        lifecycle.maximumGracefulShutdownDuration = .seconds(configuration.shutdownDrainSeconds + configuration.shutdownTimeoutSeconds)
        do {
            try await ServiceGroup(configuration: lifecycle).run()
        } catch where readiness.isDraining && !readiness.isServing {
            // A shutdown was asked for (SIGTERM, SIGINT) while start-up still waited for the
            // database: stopping is what was asked, not a failure. Any other error before serving
            // (a failed migration, the port in use) leaves `isDraining` false and exits non-zero.
            logger.notice("stopped before the server started", metadata: ["reason": "\(RedactedErrorDescription(error))"])
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending migrations, or list them with --status.")

    @OptionGroup var options: ConfigurationOptions
    @Flag(help: "List applied and pending migrations without applying anything.") var status = false

    func run() async throws {
        let configuration = try options.resolve()
        let logger = Logging.bootstrap(configuration)
        let database = try await configuration.database.open(poolSize: 1, logger: logger)
        let showStatus = status
        try await database.whileRunning(logger: logger) { database in
            let migrator = try Migrator(database: database, logger: logger)
            if showStatus {
                for (tag, state) in try await migrator.status() {
                    switch state {
                    case .applied(let date): print("applied  \(tag)  \(Timestamp.iso8601(date))")
                    case .pending: print("pending  \(tag)")
                    }
                }
            } else {
                let applied = try await migrator.migrate()
                print(applied.isEmpty ? "nothing to apply" : applied.map { "applied  \($0)" }.joined(separator: "\n"))
            }
        }
    }
}

struct CreateAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-admin",
        abstract: "Create an admin, or promote an existing account; reads the password from standard input."
    )

    @OptionGroup var options: ConfigurationOptions
    @Option(help: "Email of the admin account.") var email: String

    func run() async throws {
        let configuration = try options.resolve()
        let logger = Logging.bootstrap(configuration)
        guard let password = readLine(strippingNewline: true) else {
            throw ValidationError("expected the password on standard input (one line)")
        }
        let database = try await configuration.database.open(poolSize: 1, logger: logger)
        let email = self.email
        let hasher = PasswordHasher(cost: configuration.bcryptCost)
        let result = try await database.whileRunning(logger: logger) { database in
            try await Migrator(database: database, logger: logger).migrate()
            return try await AdminBootstrap(users: SQLUserRepository(database: database), hasher: hasher)
                .createAdmin(email: email, password: password)
        }
        print(result.created ? "created admin \(result.user.email)" : "promoted \(result.user.email) to admin")
    }
}

extension AppError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .validation(let errors): return errors.map { "\($0.field): \($0.message)" }.joined(separator: "; ")
        case .badRequest(let detail, _), .unauthorized(let detail), .forbidden(let detail), .notFound(let detail),
             .conflict(let detail), .unavailable(let detail), .rateLimited(let detail, _, _), .unsupportedMediaType(let detail):
            return detail
        }
    }
}
