import HTTPTypes
import Hummingbird

/// CORS for an exact allow-list of origins (Hummingbird's CORSMiddleware allows one origin or
/// echoes any). An origin outside the list gets no `Access-Control-Allow-Origin` at all.
struct CORSAllowListMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let allowedOrigins: Set<String>

    static var allowedMethods: String { "GET, POST, PUT, PATCH, DELETE, OPTIONS" }
    static var allowedHeaders: String { "Authorization, Content-Type" }
    static var exposedHeaders: String { "Location, Link, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, X-Request-Id" }
    /// On every response, so built once; only this middleware sets `Vary`.
    static let varyOrigin = HTTPField(name: .vary, value: "Origin")

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let origin = request.headers[.origin]
        let allowed = origin.map { allowedOrigins.contains($0) } ?? false
        if request.method == .options, origin != nil, request.headers[.accessControlRequestMethod] != nil {
            var response = Response(status: .noContent)
            response.headers.append(Self.varyOrigin)
            if allowed, let origin {
                response.headers[.accessControlAllowOrigin] = origin
                response.headers[.accessControlAllowMethods] = Self.allowedMethods
                response.headers[.accessControlAllowHeaders] = Self.allowedHeaders
                response.headers[.accessControlMaxAge] = "600"
            }
            return response
        }
        var response = try await next(request, context)
        apply(to: &response.headers, origin: origin)
        return response
    }

    /// What every response but a preflight gets.
    func apply(to headers: inout HTTPFields, origin: String?) {
        headers.append(Self.varyOrigin)
        if let origin, allowedOrigins.contains(origin) {
            headers[.accessControlAllowOrigin] = origin
            headers[.accessControlExposeHeaders] = Self.exposedHeaders
        }
    }
}
