import Hummingbird

/// The per-client token bucket for every route except health, readiness and metrics (which load
/// balancers and scrapers call on a schedule).
struct ClientRateLimitMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let limiter: TokenBucketLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path == "/health" || path == "/ready" || path == "/metrics" {
            return try await next(request, context)
        }
        let decision = limiter.take(for: context.clientAddress)
        guard decision.allowed else {
            throw AppError.rateLimited("Too many requests; slow down.", limit: limiter.burst, retryAfter: decision.retryAfter)
        }
        return try await next(request, context)
    }
}

/// Refuses bodies over `MAX_BODY_BYTES`: at once when `Content-Length` says so, otherwise while
/// reading (the JSON decoder stops collecting at the limit), so no oversized body is held whole.
struct RequestLimitsMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            throw HTTPError(.contentTooLarge, message: "The request body is larger than \(maxBodyBytes) bytes.")
        }
        var context = context
        context.maxBodyBytes = maxBodyBytes
        return try await next(request, context)
    }
}
