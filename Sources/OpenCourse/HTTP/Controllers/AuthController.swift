import Hummingbird

/// `POST /auth/register` and `POST /auth/login`.
struct AuthController {
    let auth: AuthService

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("register", use: register)
        group.post("login", use: login)
    }

    @Sendable func register(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<TokenRepresentation> {
        let input = try await request.decode(as: RegisterInput.self, context: context)
        let (user, token) = try await auth.register(input, from: context.clientLimitKey)
        return EditedResponse(status: .created, response: TokenRepresentation(user: user, token: token))
    }

    @Sendable func login(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<TokenRepresentation> {
        let input = try await request.decode(as: LoginInput.self, context: context)
        let (user, token) = try await auth.login(input, from: context.clientLimitKey)
        return EditedResponse(response: TokenRepresentation(user: user, token: token))
    }
}
