import Foundation
import Hummingbird
import NIOCore

/// Liveness and readiness at the root, for load balancers and orchestrators.
struct HealthController {
    let database: any DatabaseBackend
    let readiness: Readiness
    /// Encoded once: a load balancer asks many times a second, and encoding was 3% of the answer.
    static let okBody = ByteBuffer(bytes: (try? APIJSON.encoder.encode(StatusRepresentation(status: "ok"))) ?? Data())

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("health", use: health)
        router.get("ready", use: ready)
    }

    /// Touches no database: the process is up and serving.
    @Sendable func health(_ request: Request, context: AppRequestContext) async throws -> Response {
        APIJSON.response(Self.okBody)
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
