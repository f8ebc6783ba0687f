import HTTPTypes
import Hummingbird

/// The headers Helmet sets for an API, on every response, errors included.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    /// Built (and their values validated) once; no handler sets these, so they are appended.
    let fields: [HTTPField]

    init(hstsEnabled: Bool) {
        var fields: [HTTPField] = [
            HTTPField(name: .xContentTypeOptions, value: "nosniff"),
            HTTPField(name: .xFrameOptions, value: "DENY"),
            HTTPField(name: .referrerPolicy, value: "no-referrer"),
            HTTPField(name: .contentSecurityPolicy, value: "default-src 'none'; frame-ancestors 'none'"),
            HTTPField(name: .crossOriginResourcePolicy, value: "same-origin"),
        ]
        if hstsEnabled {
            // TLS ends at the load balancer, so this is only right when that balancer speaks HTTPS.
            fields.append(HTTPField(name: .strictTransportSecurity, value: "max-age=31536000; includeSubDomains"))
        }
        self.fields = fields
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        apply(to: &response.headers)
        return response
    }

    func apply(to headers: inout HTTPFields) {
        headers.append(contentsOf: fields)
    }
}
