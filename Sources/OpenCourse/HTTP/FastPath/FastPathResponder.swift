import HTTPTypes
import Logging
import NIOCore

/// Answers the requests that need nothing but memory, `GET /health` and catalog reads the cache
/// holds, on the connection's event loop: no task, router or middleware chain. Hummingbird's
/// request path costs 40–55 µs a request on a 2-core machine where SwiftNIO alone answers in
/// 33–45 (BENCHMARKS.md, "The HTTP floor"), more than the whole answer to these. Anything else,
/// and any request a middleware would refuse or treat specially, is left to Hummingbird, so every
/// error still has one source. The fields come from the middleware's own functions, applied in
/// the stack's order; a test compares the two paths' answers.
struct FastPathResponder: Sendable {
    struct Answer {
        var head: HTTPResponse
        var body: ByteBuffer?
    }

    let courses: CourseController
    let observability: RequestObservabilityMiddleware
    let security: SecurityHeadersMiddleware
    let cors: CORSAllowListMiddleware
    let limiter: TokenBucketLimiter?
    let logger: Logger

    static let healthPath = "/health"

    /// nil: Hummingbird answers.
    func answer(_ request: HTTPRequest, peer: SocketAddress?) -> Answer? {
        let start = ContinuousClock.now
        let fields = request.headerFields
        // A body, a connection to close or a limit to enforce are Hummingbird's to deal with.
        guard request.method == .get, let target = request.path,
              fields[.contentLength] == nil, fields[.transferEncoding] == nil, !Self.closesConnection(request),
              !RequestLimitsMiddleware.isTooLong(target: target), !RequestLimitsMiddleware.areTooLarge(fields)
        else { return nil }
        // Only exact paths: Hummingbird's router also takes `/health/` and `//health` (it skips
        // empty segments), which are left to it.
        guard !target.utf8.contains(UInt8(ascii: "#")) else { return nil }
        let mark = target.utf8.firstIndex(of: UInt8(ascii: "?"))
        let path = target[..<(mark ?? target.endIndex)]
        let query = mark.map { String(target[target.utf8.index(after: $0)...]) }

        let route: String
        var status = HTTPResponse.Status.ok
        var headers: HTTPFields
        var body: ByteBuffer?
        var client: String?
        if path == Self.healthPath {
            route = Self.healthPath
            headers = [.contentType: APIJSON.contentType]
            body = HealthController.okBody
        } else if let representation = courses.cached(path: String(path), query: query) {
            route = path == CourseController.catalogPath ? CourseController.catalogPath : CourseController.courseRoute
            let catalog = CatalogResponses.answer(
                ifNoneMatch: fields[values: .ifNoneMatch], representation: representation, cacheControl: courses.catalog.cacheControl
            )
            (status, headers, body) = (catalog.status, catalog.headers, catalog.body)
        } else {
            return nil
        }
        // Taken only for an answer given here: Hummingbird takes its own for what it answers.
        if let limiter, !ClientRateLimitMiddleware.isExempt(path: path) {
            let address = resolveClient(request, peer: peer)
            guard limiter.take(for: IPAddress.limitKey(of: address)).allowed else { return nil }
            client = address
        }
        // As Hummingbird's `Response` sets it.
        if let body { headers[.contentLength] = String(body.readableBytes) }

        // The middleware's order, innermost first (`buildRoutes` adds them outermost first).
        DefaultCacheControlMiddleware.apply(to: &headers)
        cors.apply(to: &headers, origin: fields[.origin])
        security.apply(to: &headers)
        let requestID = RequestObservabilityMiddleware.requestID(from: fields)
        headers[.requestID] = requestID
        // As Hummingbird's `Application` sets it, after the middleware.
        headers[.date] = HTTPDate.now

        var logger = logger
        if logger.logLevel <= .info {
            logger[metadataKey: "request_id"] = .string(requestID)
        }
        observability.metrics.recordFastPathResponse()
        observability.record(
            method: .get, route: route, status: status, duration: ContinuousClock.now - start,
            client: client ?? resolveClient(request, peer: peer), userID: nil, logger: logger
        )
        return Answer(head: HTTPResponse(status: status, headerFields: headers), body: body)
    }

    /// Hummingbird's own test: it closes after answering such a request.
    static func closesConnection(_ request: HTTPRequest) -> Bool {
        request.headerFields[.connection] == "close"
    }

    private func resolveClient(_ request: HTTPRequest, peer: SocketAddress?) -> String {
        observability.clientAddresses.resolve(peer: peer?.ipAddress, forwardedFor: request.headerFields[values: .xForwardedFor])
    }
}
