import HTTPTypes
import Hummingbird

/// Responses that did not choose a caching policy are personal or transient: never stored.
struct DefaultCacheControlMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    static let privateNoStore = HTTPField(name: .cacheControl, value: "private, no-store")

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        Self.apply(to: &response.headers)
        return response
    }

    static func apply(to headers: inout HTTPFields) {
        // `contains`, not the subscript, which joins the values into a new string.
        if !headers.contains(.cacheControl) {
            headers.append(privateNoStore)
        }
    }
}
