import Hummingbird

/// Requires `Authorization: Bearer <token>` and records the verified caller in the context.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let tokens: TokenService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw AppError.unauthorized("This route needs an access token: Authorization: Bearer <token>.")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw AppError.unauthorized("The Authorization header must be: Bearer <token>.")
        }
        var context = context
        context.identity = try await tokens.verify(String(parts[1]).trimmingCharacters(in: .whitespaces))
        return try await next(request, context)
    }
}
