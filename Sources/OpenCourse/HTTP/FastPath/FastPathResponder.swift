import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1

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
    let limiter: TokenBucketLimiter?
    let logger: Logger
    private let appended: AppendedFields
    private let series: Series

    init(
        courses: CourseController, observability: RequestObservabilityMiddleware, security: SecurityHeadersMiddleware,
        cors: CORSAllowListMiddleware, limiter: TokenBucketLimiter?, logger: Logger
    ) {
        self.courses = courses
        self.observability = observability
        self.limiter = limiter
        self.logger = logger
        self.appended = AppendedFields(cors: cors, security: security)
        self.series = Series(metrics: observability.metrics)
    }

    static let healthPath = "/health"
    /// The health answer's own fields, as its handler's `Response` has them.
    private static let healthFields = [
        (APIJSON.contentTypeField.name.rawName, APIJSON.contentTypeField.value),
        (HTTPField.Name.contentLength.rawName, String(HealthController.okBody.readableBytes)),
    ]

    /// nil: Hummingbird answers.
    func answer(_ request: HTTPRequestHead, peer: @autoclosure () -> SocketAddress?) -> Answer? {
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

        let route: Route
        var status = HTTPResponse.Status.ok
        var own: [(String, String)]
        var setsCaching = false
        var body: ByteBuffer?
        var client: String?
        if path == Self.healthPath {
            route = .health
            own = Self.healthFields
            body = HealthController.okBody
        } else if let representation = courses.cached(path: String(path), query: query) {
            route = path == CourseController.catalogPath ? .catalog : .course
            let catalog = CatalogResponses.answer(
                ifNoneMatch: fields[values: .ifNoneMatch], representation: representation, cacheControl: courses.catalog.cacheControl
            )
            (status, body, setsCaching) = (catalog.status, catalog.body, catalog.headers.contains(.cacheControl))
            own = catalog.headers.map { ($0.name.rawName, $0.value) }
            own.reserveCapacity(own.count + 16)
            // As Hummingbird's `Response` sets it.
            if let body { own.append((HTTPField.Name.contentLength.rawName, String(body.readableBytes))) }
        } else {
            return nil
        }
        guard let added = appended.fields(setsCaching: setsCaching, origin: fields[.origin]) else { return nil }
        // Taken only for an answer given here: Hummingbird takes its own for what it answers.
        if let limiter, !ClientRateLimitMiddleware.isExempt(path: path) {
            let address = resolveClient(fields, peer: peer)
            guard limiter.take(for: IPAddress.limitKey(of: address)).allowed else { return nil }
            client = address
        }

        let requestID = RequestObservabilityMiddleware.requestID(offered: fields[.requestID])
        own.reserveCapacity(own.count + added.count + 2)
        own.append(contentsOf: added)
        // Request ids are letters, digits and `._-` (RequestObservabilityMiddleware.acceptable),
        // the date ASCII: neither needs the cleaning `HTTPField` would give them.
        own.append((HTTPField.Name.requestID.rawName, requestID))
        // As Hummingbird's `Application` sets it, after the middleware.
        own.append((HTTPField.Name.date.rawName, HTTPDate.now))

        observability.metrics.recordFastPathResponse()
        var logger = logger
        if logger.logLevel <= .info {
            logger[metadataKey: "request_id"] = .string(requestID)
        }
        observability.record(
            method: .get, route: route.name, status: status, duration: ContinuousClock.now - start,
            client: client ?? resolveClient(fields, peer: peer), userID: nil, logger: logger, series: series[route, status]
        )
        // As Hummingbird's conversion (NIOHTTPTypesHTTP1) writes it.
        let head = HTTPResponseHead(
            version: .http1_1, status: HTTPResponseStatus(statusCode: Int(status.code), reasonPhrase: status.reasonPhrase),
            headers: HTTPHeaders(own)
        )
        return Answer(head: head, body: body)
    }

    private enum Route {
        case health, catalog, course

        /// The route's name in metrics and logs, as Hummingbird's router names it.
        var name: String {
            switch self {
            case .health: FastPathResponder.healthPath
            case .catalog: CourseController.catalogPath
            case .course: CourseController.courseRoute
            }
        }
    }

    /// The request series of the answers given here.
    private struct Series: Sendable {
        let health: LazyRequestSeries
        let catalog: (ok: LazyRequestSeries, notModified: LazyRequestSeries)
        let course: (ok: LazyRequestSeries, notModified: LazyRequestSeries)

        init(metrics: AppMetrics) {
            func series(_ route: Route, _ status: HTTPResponse.Status) -> LazyRequestSeries {
                LazyRequestSeries(metrics: metrics, route: route.name, method: HTTPRequest.Method.get.rawValue, status: status.code)
            }
            health = series(.health, .ok)
            catalog = (series(.catalog, .ok), series(.catalog, .notModified))
            course = (series(.course, .ok), series(.course, .notModified))
        }

        /// Health answers 200, the catalog 200 or 304; nil for any other status, which
        /// `RequestObservabilityMiddleware.record` then counts by name.
        subscript(route: Route, status: HTTPResponse.Status) -> LazyRequestSeries? {
            switch (route, status) {
            case (.health, .ok): health
            case (.catalog, .ok): catalog.ok
            case (.catalog, .notModified): catalog.notModified
            case (.course, .ok): course.ok
            case (.course, .notModified): course.notModified
            default: nil
            }
        }
    }

    /// What the middleware append to an answer (`DefaultCacheControlMiddleware`,
    /// `CORSAllowListMiddleware`, `SecurityHeadersMiddleware`, in the stack's order), worked out
    /// once per variant with their own functions: whether the answer chose its caching, and the
    /// allowed origin it names. Appending them per answer as `HTTPField`s and converting those to
    /// NIO's fields was a third of a fast answer.
    private struct AppendedFields: Sendable {
        private struct Variant: Sendable {
            let origin: String?
            let ownCaching: [(String, String)]
            let defaultCaching: [(String, String)]
        }

        /// No `Origin`, or one not allowed: CORS adds only `Vary` to both.
        private let anyOrigin: Variant
        private let allowedOrigins: [String: Variant]

        init(cors: CORSAllowListMiddleware, security: SecurityHeadersMiddleware) {
            func variant(origin: String?) -> Variant {
                // Only whether a `Cache-Control` is there matters, not its value.
                let caching: HTTPFields = [.cacheControl: "public"]
                return Variant(
                    origin: origin,
                    ownCaching: Self.appended(to: caching, origin: origin, cors: cors, security: security),
                    defaultCaching: Self.appended(to: [:], origin: origin, cors: cors, security: security)
                )
            }
            anyOrigin = variant(origin: nil)
            allowedOrigins = Dictionary(uniqueKeysWithValues: cors.allowedOrigins.map { ($0, variant(origin: $0)) })
        }

        private static func appended(
            to own: HTTPFields, origin: String?, cors: CORSAllowListMiddleware, security: SecurityHeadersMiddleware
        ) -> [(String, String)] {
            var fields = own
            DefaultCacheControlMiddleware.apply(to: &fields)
            cors.apply(to: &fields, origin: origin)
            security.apply(to: &fields)
            // The middleware append: the answer's own fields stay as they were, in front. (CORS
            // sets its two fields rather than appending them; no answer here has them.)
            precondition(fields.prefix(own.count).elementsEqual(own))
            return fields.dropFirst(own.count).map { ($0.name.rawName, $0.value) }
        }

        /// nil for an `Origin` allowed only as Swift compares strings (Unicode-equivalent, other
        /// bytes): CORS echoes the client's bytes, which Hummingbird then does.
        func fields(setsCaching: Bool, origin: String?) -> [(String, String)]? {
            let variant = allowedOrigins.isEmpty ? anyOrigin : origin.flatMap { allowedOrigins[$0] } ?? anyOrigin
            if let allowed = variant.origin, let origin, !allowed.utf8.elementsEqual(origin.utf8) { return nil }
            return setsCaching ? variant.ownCaching : variant.defaultCaching
        }
    }

    /// `peer` is read only here, when needed: the channel checks its thread and copies the address.
    private func resolveClient(_ fields: Fields, peer: () -> SocketAddress?) -> String {
        observability.clientAddresses.resolve(peer: peer()?.ipAddress, forwardedFor: fields[values: .xForwardedFor])
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
