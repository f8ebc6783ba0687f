import Hummingbird

/// Liveness and readiness at the root, for load balancers and orchestrators.
struct HealthController {
    let database: any DatabaseBackend
    let readiness: Readiness

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("health", use: health)
        router.get("ready", use: ready)
    }

    /// Touches no database: the process is up and serving.
    @Sendable func health(_ request: Request, context: AppRequestContext) async throws -> StatusRepresentation {
        StatusRepresentation(status: "ok")
    }

    /// 503 while shutting down (so balancers stop routing here) or when the database is unreachable.
    @Sendable func ready(_ request: Request, context: AppRequestContext) async throws -> StatusRepresentation {
        guard !readiness.isDraining else {
            throw AppError.unavailable("This instance is shutting down.")
        }
        guard await database.isReachable() else {
            throw AppError.unavailable("The database cannot be reached.")
        }
        return StatusRepresentation(status: "ready")
    }
}
