import Hummingbird

/// `GET` and `PUT /users/me`; all routes need a signed-in caller.
struct UserController {
    let users: UserService

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("me", use: profile)
        group.put("me", use: updateProfile)
    }

    @Sendable func profile(_ request: Request, context: AppRequestContext) async throws -> UserRepresentation {
        UserRepresentation(try await users.profile(of: try context.requireIdentity()))
    }

    @Sendable func updateProfile(_ request: Request, context: AppRequestContext) async throws -> UserRepresentation {
        let input = try await request.decode(as: ProfileUpdateInput.self, context: context)
        return UserRepresentation(try await users.updateProfile(of: try context.requireIdentity(), with: input, from: context.clientLimitKey))
    }
}
