import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// Answers the requests that need nothing but memory, `GET /health` and catalog reads the cache
/// holds, on the connection's event loop: no task, router or middleware chain. Hummingbird's
/// request path costs 40–55 µs a request on a 2-core machine where SwiftNIO alone answers in
/// 33–45 (BENCHMARKS.md, "The HTTP floor"), more than the whole answer to these. Anything else,
/// and any request a middleware would refuse or treat specially, is left to Hummingbird, so every
/// error still has one source. The fields come from the middleware's own functions, applied in
/// the stack's order; a test compares the two paths' answers. It reads NIO's request head, before
/// Hummingbird converts it, and reads it as that conversion would (see `Fields`).
struct FastPathResponder: Sendable {
    struct Answer {
        var head: HTTPResponseHead
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
    func answer(_ request: HTTPRequestHead, peer: SocketAddress?) -> Answer? {
        let start = ContinuousClock.now
        let fields = Fields(request.headers)
        let target = request.uri
        // A body, a connection to close or a limit to enforce are Hummingbird's to deal with; so
        // are HTTP/1.0 (keep-alive differs) and targets not in origin form (`http://host/path`).
        guard request.method == .GET, request.version == .http1_1, target.utf8.first == UInt8(ascii: "/"),
              fields[.contentLength] == nil, fields[.transferEncoding] == nil, !fields.closesConnection,
              !RequestLimitsMiddleware.isTooLong(target: target), !fields.mayBeTooLarge
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
            headers = HTTPFields()
            headers.reserveCapacity(16)
            headers.append(APIJSON.contentTypeField)
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
            let address = resolveClient(fields, peer: peer)
            guard limiter.take(for: IPAddress.limitKey(of: address)).allowed else { return nil }
            client = address
        }
        // As Hummingbird's `Response` sets it. (Here and below appended, as the subscript would
        // add them to fields that do not have them, without searching first.)
        if let body { headers.append(HTTPField(name: .contentLength, value: String(body.readableBytes))) }

        // The middleware's order, innermost first (`buildRoutes` adds them outermost first).
        DefaultCacheControlMiddleware.apply(to: &headers)
        cors.apply(to: &headers, origin: fields[.origin])
        security.apply(to: &headers)
        let requestID = RequestObservabilityMiddleware.requestID(offered: fields[.requestID])
        headers.append(HTTPField(name: .requestID, value: requestID))
        // As Hummingbird's `Application` sets it, after the middleware.
        headers.append(HTTPField(name: .date, value: HTTPDate.now))

        var logger = logger
        if logger.logLevel <= .info {
            logger[metadataKey: "request_id"] = .string(requestID)
        }
        observability.metrics.recordFastPathResponse()
        observability.record(
            method: .get, route: route, status: status, duration: ContinuousClock.now - start,
            client: client ?? resolveClient(fields, peer: peer), userID: nil, logger: logger
        )
        // As Hummingbird's conversion writes it.
        return Answer(head: HTTPResponseHead(HTTPResponse(status: status, headerFields: headers)), body: body)
    }

    private func resolveClient(_ fields: Fields, peer: SocketAddress?) -> String {
        observability.clientAddresses.resolve(peer: peer?.ipAddress, forwardedFor: fields[values: .xForwardedFor])
    }

    /// NIO's header fields read as Swift HTTP Types' `HTTPFields` would read them after
    /// Hummingbird's conversion: names without regard to case, values cleaned as `HTTPField`
    /// cleans them, a name's values joined by ", " (no cookies are read here, which would be
    /// joined by "; ").
    struct Fields {
        let headers: HTTPHeaders

        init(_ headers: HTTPHeaders) {
            self.headers = headers
        }

        subscript(name: HTTPField.Name) -> String? {
            let values = self[values: name]
            return values.isEmpty ? nil : values.count == 1 ? values[0] : values.joined(separator: ", ")
        }

        /// Each value as `HTTPField` stores it: NIO's parser keeps trailing spaces and tabs, which
        /// the conversion drops (`Connection: close␠` is `close` to Hummingbird).
        subscript(values name: HTTPField.Name) -> [String] {
            headers[name.canonicalName].map { HTTPField(name: name, value: $0).value }
        }

        /// The conversion drops the first `Host` (it becomes the authority), so these fields are
        /// never fewer or larger than what `RequestLimitsMiddleware` would count: within them,
        /// so is the converted request; beyond them, Hummingbird decides exactly.
        var mayBeTooLarge: Bool {
            RequestLimitsMiddleware.areTooLarge(headers.lazy.map { ($0.name, $0.value) }, count: headers.count)
        }

        /// Hummingbird's own test (on the converted fields): it closes after answering such a request.
        var closesConnection: Bool {
            self[.connection] == "close"
        }
    }
}
