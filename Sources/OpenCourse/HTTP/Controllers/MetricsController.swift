import Crypto
import Foundation
import Hummingbird
import NIOCore

/// `GET /metrics` in the Prometheus text format, optionally behind `METRICS_TOKEN`.
struct MetricsController {
    let metrics: AppMetrics
    let token: String?

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("metrics", use: scrape)
    }

    @Sendable func scrape(_ request: Request, context: AppRequestContext) async throws -> Response {
        if let token {
            let presented = request.headers[.authorization] ?? ""
            guard Self.constantTimeEqual(presented, "Bearer \(token)") else {
                throw AppError.unauthorized("Metrics need Authorization: Bearer <METRICS_TOKEN>.")
            }
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition()))
        )
    }

    /// Compares digests so the time taken says nothing about how much of the token was right.
    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        Data(SHA256.hash(data: Data(a.utf8))) == Data(SHA256.hash(data: Data(b.utf8)))
    }
}
