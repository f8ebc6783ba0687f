import HTTPTypes
import Hummingbird

/// The per-client token bucket for every route except health, readiness and metrics (which load
/// balancers and scrapers call on a schedule).
struct ClientRateLimitMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let limiter: TokenBucketLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.isExempt(path: request.uri.path) {
            return try await next(request, context)
        }
        let decision = limiter.take(for: context.clientLimitKey)
        guard decision.allowed else {
            throw AppError.rateLimited("Too many requests; slow down.", limit: limiter.burst, retryAfter: decision.retryAfter)
        }
        return try await next(request, context)
    }

    static func isExempt(path: some StringProtocol) -> Bool {
        path == "/health" || path == "/ready" || path == "/metrics"
    }
}

/// Refuses what no client of this API needs to send, with a problem answer: a request target over
/// 8 KiB (414), header fields over 16 KiB or 100 in all (431), and bodies over `MAX_BODY_BYTES`
/// (413) at once when `Content-Length` says so, otherwise while reading (the JSON decoder stops
/// collecting at the limit), so no oversized body is held whole. Beyond these, NIO's own parser
/// limit (80 KiB of head) closes the connection after a bare 400.
struct RequestLimitsMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    static let maxTargetBytes = 8 * 1024
    static let maxHeaderBytes = 16 * 1024
    static let maxHeaderFields = 100
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.isTooLong(target: request.uri.description) {
            throw HTTPError(.uriTooLong, message: "The request target is longer than \(Self.maxTargetBytes) bytes.")
        }
        if Self.areTooLarge(request.headers) {
            throw HTTPError(
                .requestHeaderFieldsTooLarge,
                message: "The header fields exceed \(Self.maxHeaderFields) fields or \(Self.maxHeaderBytes) bytes."
            )
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            throw HTTPError(.contentTooLarge, message: "The request body is larger than \(maxBodyBytes) bytes.")
        }
        var context = context
        context.maxBodyBytes = maxBodyBytes
        return try await next(request, context)
    }

    static func isTooLong(target: String) -> Bool {
        target.utf8.count > maxTargetBytes
    }

    static func areTooLarge(_ headers: HTTPFields) -> Bool {
        areTooLarge(headers.lazy.map { ($0.name.rawName, $0.value) }, count: headers.count)
    }

    /// The rule itself, for fields given as name and value (the fast path reads NIO's).
    static func areTooLarge(_ fields: some Sequence<(String, String)>, count: Int) -> Bool {
        count > maxHeaderFields || fields.reduce(0, { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 }) > maxHeaderBytes
    }
}
