import Crypto
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Assembles the application from a configuration: database, services, routes and middleware.
/// Pending migrations run before the server starts accepting requests unless the configuration
/// says otherwise. `readiness` is shared with the `ShutdownDrain` service of `serve`.
public func buildApplication(
    _ configuration: AppConfiguration,
    readiness: Readiness = Readiness(),
    logger: Logger? = nil
) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "opencourse")
    logger.logLevel = configuration.logLevel
    let metrics = AppMetrics()
    let database = try await configuration.database.open(
        poolSize: configuration.databasePoolSize, timeoutSeconds: configuration.databaseTimeoutSeconds,
        metrics: metrics, logger: logger
    )
    return try await buildApplication(configuration, database: database, metrics: metrics, readiness: readiness, logger: logger)
}

/// Assembles the application around a database that is already open (tests share it).
func buildApplication(
    _ configuration: AppConfiguration,
    database: any DatabaseBackend,
    metrics: AppMetrics = AppMetrics(),
    readiness: Readiness = Readiness(),
    attemptStore: (any AttemptStore)? = nil,
    logger: Logger
) async throws -> some ApplicationProtocol {
    let dependencies = await Dependencies(
        configuration, database: database, metrics: metrics, readiness: readiness, attemptStore: attemptStore, logger: logger
    )
    var services = database.services + [dependencies.hasher.service]
    if let cache = dependencies.catalogCache { services.append(cache) }
    if configuration.heapTrimSeconds > 0 {
        services.append(HeapTrimmer(interval: .seconds(configuration.heapTrimSeconds), logger: logger))
    }
    if let broadcaster = dependencies.catalogChanges as? CatalogChangeBroadcaster, let postgres = database as? PostgresBackend {
        services.append(broadcaster)
        do {
            services.append(CatalogChangeListener(
                configuration: try postgres.settings.connectionConfiguration(), cache: broadcaster.cache, logger: logger
            ))
        } catch {
            logger.error("catalog changes from other instances cannot be heard: no TLS context", metadata: ["error": "\(error)"])
        }
    }
    // Without an idle timeout a client could hold connections (and descriptors) for ever by
    // opening them and sending nothing, or half a request head.
    let idleTimeout = configuration.httpIdleTimeoutSeconds > 0
        ? TimeAmount.milliseconds(Int64(configuration.httpIdleTimeoutSeconds * 1000)) : nil
    let routes = try buildRoutes(configuration, dependencies, logger: logger)
    var app = Application(
        router: routes.router,
        server: .http1(configuration: .init(idleTimeout: idleTimeout), fastPath: configuration.httpFastPath ? routes.fastPath : nil),
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: nil,
            availableConnectionsDelegate: .maximum(configuration.httpMaxConnections ?? ConnectionBudget.derived(), logger: logger)
        ),
        services: services,
        onServerRunning: { _ in
            // Before the instance reports ready, so pages come back under the first requests,
            // not under a load balancer's full share; a few milliseconds on a loop that serves nothing yet.
            if configuration.releaseStartupPages, let released = StartupPages.release() {
                logger.info("gave back memory pages only start-up used", metadata: [
                    "resident_kib_before": "\(released.residentBytesBefore >> 10)",
                    "resident_kib_after": "\(released.residentBytesAfter >> 10)",
                ])
            }
            readiness.markServing()
        },
        logger: logger
    )
    if configuration.migrateOnStart {
        app.beforeServerStarts {
            // A shutdown while the database is still unreachable ends the wait for it, instead of
            // the wait running out the whole graceful-shutdown time.
            _ = try await cancelWhenGracefulShutdown {
                try await Migrator(database: database, logger: logger).migrate()
            }
        }
    }
    return app
}

/// What the routes are built from.
struct Dependencies: Sendable {
    var database: any DatabaseBackend
    var tokens: TokenService
    var hasher: PasswordHasher
    var limits: AttemptLimits
    var metrics: AppMetrics
    var readiness: Readiness
    var catalogCache: CatalogCache?
    var catalogChanges: (any CatalogChangeObserver)?

    init(
        _ configuration: AppConfiguration,
        database: any DatabaseBackend,
        metrics: AppMetrics,
        readiness: Readiness,
        attemptStore: (any AttemptStore)?,
        logger: Logger
    ) async {
        let secret = configuration.jwtSecret ?? {
            logger.warning("JWT_SECRET is not set: using a random key, so tokens will not survive a restart or work across instances")
            return SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        }()
        let store: any AttemptStore = attemptStore ?? {
            switch configuration.rateLimitStore {
            case .memory: return InMemoryAttemptStore()
            case .postgres: return SQLAttemptStore(database: database)
            }
        }()
        let catalogCache = configuration.catalogCacheEnabled
            ? CatalogCache(
                capacity: configuration.catalogCacheEntries, maxBytes: configuration.catalogCacheMaxBytes,
                timeToLive: .milliseconds(Int64(configuration.catalogCacheTTLSeconds * 1000))
            )
            : nil
        // On PostgreSQL other instances must hear of changes; SQLite has one process.
        let catalogChanges: (any CatalogChangeObserver)? = catalogCache.map { cache -> any CatalogChangeObserver in
            database.kind == .postgres ? CatalogChangeBroadcaster(cache: cache, database: database, logger: logger) : cache
        }
        self.database = database
        tokens = await TokenService(secret: secret, lifetimeSeconds: configuration.jwtLifetimeSeconds)
        hasher = PasswordHasher(cost: configuration.bcryptCost, metrics: metrics)
        limits = AttemptLimits(
            store: store, windowSeconds: configuration.rateLimitWindowSeconds,
            loginMaxFailures: configuration.loginMaxFailures, registerMaxPerWindow: configuration.registerMaxPerWindow
        )
        self.metrics = metrics
        self.readiness = readiness
        self.catalogCache = catalogCache
        self.catalogChanges = catalogChanges
    }
}

/// The router, and the fast path that answers some of its routes from the same parts.
func buildRoutes(
    _ configuration: AppConfiguration, _ dependencies: Dependencies, logger: Logger
) throws -> (router: Router<AppRequestContext>, fastPath: FastPathResponder) {
    let database = dependencies.database
    let users = SQLUserRepository(database: database)
    let courseService = CourseService(courses: SQLCourseRepository(database: database), changes: dependencies.catalogChanges)
    let enrollmentService = EnrollmentService(enrollments: SQLEnrollmentRepository(database: database), courses: courseService)
    let authentication = AuthenticationMiddleware(tokens: dependencies.tokens)

    // HEAD wherever there is GET (RFC 9110 9.3.2): the same headers, no body.
    let router = Router(context: AppRequestContext.self, options: .autoGenerateHeadEndpoints)
    // Middleware wraps every route and the not-found responder, outermost first: observability
    // sees the final status; headers apply to errors too; problem details turn every error into a
    // response before those two see it.
    let observability = RequestObservabilityMiddleware(
        metrics: dependencies.metrics, clientAddresses: ClientAddressResolver(trustedProxies: configuration.trustedProxies)
    )
    let security = SecurityHeadersMiddleware(hstsEnabled: configuration.hstsEnabled)
    let cors = CORSAllowListMiddleware(allowedOrigins: Set(configuration.corsAllowedOrigins))
    let limiter = configuration.rateLimitRPS > 0
        ? TokenBucketLimiter(rate: configuration.rateLimitRPS, burst: configuration.rateLimitBurst) : nil
    // `FastPathResponder` applies the same layers' fields in the same order: a layer added here
    // must be applied there too, or the routes it answers left to Hummingbird.
    router.add(middleware: observability)
    router.add(middleware: security)
    router.add(middleware: cors)
    router.add(middleware: DefaultCacheControlMiddleware())
    router.add(middleware: ProblemDetailsMiddleware())
    if let limiter {
        router.add(middleware: ClientRateLimitMiddleware(limiter: limiter))
    }
    router.add(middleware: RequestLimitsMiddleware(maxBodyBytes: configuration.maxBodyBytes))

    HealthController(database: database, readiness: dependencies.readiness).addRoutes(to: router)
    MetricsController(metrics: dependencies.metrics, token: configuration.metricsToken).addRoutes(to: router)
    let api = router.group("api/v1")
    try OpenAPIController().addRoutes(to: api)
    AuthController(auth: AuthService(users: users, hasher: dependencies.hasher, tokens: dependencies.tokens, limits: dependencies.limits))
        .addRoutes(to: api.group("auth"))
    let me = api.group("users").add(middleware: authentication)
    UserController(users: UserService(users: users, hasher: dependencies.hasher, limits: dependencies.limits)).addRoutes(to: me)
    let enrollments = EnrollmentController(enrollments: enrollmentService)
    enrollments.addUserRoutes(to: me)
    let courses = api.group("courses")
    let catalog = CatalogResponses(
        cache: dependencies.catalogCache, maxAgeSeconds: configuration.httpCacheMaxAgeSeconds,
        staleWhileRevalidateSeconds: configuration.httpCacheStaleWhileRevalidateSeconds
    )
    let courseController = CourseController(courses: courseService, authentication: authentication, catalog: catalog)
    courseController.addRoutes(to: courses)
    enrollments.addCourseRoutes(to: courses.group().add(middleware: authentication))
    router.add(middleware: MethodNotAllowedMiddleware(routes: router.routes))
    let fastPath = FastPathResponder(
        courses: courseController, observability: observability, security: security, cors: cors, limiter: limiter, logger: logger
    )
    return (router, fastPath)
}
