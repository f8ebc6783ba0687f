import Crypto
import Hummingbird
import Logging
import ServiceLifecycle

/// Assembles the application from a configuration: database, services, routes and middleware.
/// The database is opened here; pending migrations run before the server starts accepting
/// requests unless the configuration says otherwise.
public func buildApplication(
    _ configuration: AppConfiguration,
    logger: Logger? = nil
) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "opencourse")
    logger.logLevel = configuration.logLevel
    let database = try await configuration.database.open(poolSize: configuration.databasePoolSize, logger: logger)
    return await buildApplication(configuration, database: database, logger: logger)
}

/// Assembles the application around a database that is already open (tests share it).
func buildApplication(
    _ configuration: AppConfiguration,
    database: any DatabaseBackend,
    logger: Logger
) async -> some ApplicationProtocol {
    let secret = configuration.jwtSecret ?? {
        logger.warning("JWT_SECRET is not set: using a random key, so tokens will not survive a restart or work across instances")
        return SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }()
    let tokens = await TokenService(secret: secret, lifetimeSeconds: configuration.jwtLifetimeSeconds)
    let hasher = PasswordHasher(cost: configuration.bcryptCost)

    let router = buildRouter(database: database, tokens: tokens, hasher: hasher)
    var app = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
        services: database.services + [hasher.service],
        logger: logger
    )
    if configuration.migrateOnStart {
        let logger = logger
        app.beforeServerStarts {
            try await Migrator(database: database, logger: logger).migrate()
        }
    }
    return app
}

func buildRouter(database: any DatabaseBackend, tokens: TokenService, hasher: PasswordHasher) -> Router<AppRequestContext> {
    let users = SQLUserRepository(database: database)
    let courseService = CourseService(courses: SQLCourseRepository(database: database))
    let enrollmentService = EnrollmentService(enrollments: SQLEnrollmentRepository(database: database), courses: courseService)
    let authentication = AuthenticationMiddleware(tokens: tokens)

    let router = Router(context: AppRequestContext.self)
    // Added first so that it wraps everything, the not-found responder included.
    router.add(middleware: ProblemDetailsMiddleware())

    HealthController(database: database).addRoutes(to: router)
    let api = router.group("api/v1")
    AuthController(auth: AuthService(users: users, hasher: hasher, tokens: tokens))
        .addRoutes(to: api.group("auth"))
    let me = api.group("users").add(middleware: authentication)
    UserController(users: UserService(users: users, hasher: hasher)).addRoutes(to: me)
    let enrollments = EnrollmentController(enrollments: enrollmentService)
    enrollments.addUserRoutes(to: me)
    let courses = api.group("courses")
    CourseController(courses: courseService, authentication: authentication).addRoutes(to: courses)
    enrollments.addCourseRoutes(to: courses.group().add(middleware: authentication))
    return router
}
