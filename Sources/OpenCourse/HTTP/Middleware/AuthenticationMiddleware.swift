import Hummingbird

/// Requires `Authorization: Bearer <token>` and records the verified caller in the context.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let tokens: TokenService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw AppError.unauthorized("This route needs an access token: Authorization: Bearer <token>.")
        }
        // "Bearer" is case-insensitive (RFC 9110 11.1); the token itself has no spaces.
        guard header.utf8.count > 7, header.utf8.prefix(7).map({ $0 | 0x20 }) == Array("bearer ".utf8) else {
            throw AppError.unauthorized("The Authorization header must be: Bearer <token>.")
        }
        let token = header.dropFirst(7).drop { $0 == " " }
        var context = context
        context.identity = try await tokens.verify(String(token))
        return try await next(request, context)
    }
}
