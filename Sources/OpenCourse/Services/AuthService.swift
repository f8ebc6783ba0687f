import Foundation

/// Registration and sign-in.
public struct AuthService: Sendable {
    let users: any UserRepository
    let hasher: PasswordHasher
    let tokens: TokenService

    public init(users: any UserRepository, hasher: PasswordHasher, tokens: TokenService) {
        self.users = users
        self.hasher = hasher
        self.tokens = tokens
    }

    public func register(_ input: RegisterInput) async throws -> (user: User, token: IssuedToken) {
        var validator = Validator()
        let email = validator.requiredText(input.email, field: "email", rule: .email)
        let password = validator.requiredText(input.password, field: "password", rule: .password)
        let name = validator.text(input.name, field: "name", rule: .name).value ?? nil
        let role = validator.choice(input.role, field: "role", allowed: Role.selfAssignable) ?? .student
        try validator.check()
        guard let email, let password else { throw AppError.validation(validator.errors) }

        let now = Timestamp.now()
        let user = User(
            id: UUID(), email: email, passwordHash: try await hasher.hash(password),
            name: name.flatMap { $0.isEmpty ? nil : $0 }, role: role, createdAt: now, updatedAt: now
        )
        do {
            _ = try await users.create(user)
        } catch RepositoryError.duplicate {
            throw AppError.conflict("An account with this email already exists.")
        }
        return (user, try await tokens.issue(for: user))
    }

    /// Wrong password, unknown email and an impossible password all get the same answer after one
    /// bcrypt verification, so neither the message nor the timing tells which accounts exist.
    public func login(_ input: LoginInput) async throws -> (user: User, token: IssuedToken) {
        var validator = Validator()
        let email = validator.requiredText(input.email, field: "email", rule: TextRule(lowercased: true, length: 1...1024))
        let password = validator.requiredText(input.password, field: "password", rule: TextRule(trimmed: false, length: 1...1024))
        try validator.check()
        guard let email, let password else { throw AppError.validation(validator.errors) }

        let failure = AppError.unauthorized("Email or password is incorrect.")
        guard password.utf8.count <= TextRule.password.length.upperBound,
              let user = try await users.find(email: email)
        else {
            try await hasher.verifyDecoy(password)
            throw failure
        }
        guard try await hasher.verify(password, against: user.passwordHash) else { throw failure }
        return (user, try await tokens.issue(for: user))
    }
}
