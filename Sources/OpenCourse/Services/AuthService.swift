import Foundation

/// Registration and sign-in.
public struct AuthService: Sendable {
    let users: any UserRepository
    let hasher: PasswordHasher
    let tokens: TokenService
    let limits: AttemptLimits

    public init(users: any UserRepository, hasher: PasswordHasher, tokens: TokenService, limits: AttemptLimits) {
        self.users = users
        self.hasher = hasher
        self.tokens = tokens
        self.limits = limits
    }

    /// `client` is the caller's address, for the per-address registration limit.
    public func register(_ input: RegisterInput, from client: String) async throws -> (user: User, token: IssuedToken) {
        try await limits.admitRegistration(client: client)
        var validator = Validator()
        let email = validator.requiredText(input.email, field: "email", rule: .email)
        let password = validator.requiredText(input.password, field: "password", rule: .password)
        let name = validator.text(input.name, field: "name", rule: .name).value ?? nil
        let role = validator.choice(input.role, field: "role", allowed: Role.selfAssignable) ?? .student
        try validator.check()
        guard let email, let password else { throw AppError.validation(validator.errors) }

        let passwordHash = try await hasher.hash(password)
        let (id, now) = RecordStamp.next()
        let user = User(
            id: id, email: email, passwordHash: passwordHash,
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
    public func login(_ input: LoginInput, from client: String) async throws -> (user: User, token: IssuedToken) {
        var validator = Validator()
        let email = validator.requiredText(input.email, field: "email", rule: TextRule(lowercased: true, length: 1...1024))
        let password = validator.requiredText(input.password, field: "password", rule: TextRule(trimmed: false, length: 1...1024))
        try validator.check()
        guard let email, let password else { throw AppError.validation(validator.errors) }

        let earlierFailures = try await limits.checkLogin(email: email, client: client)
        let failure = AppError.unauthorized("Email or password is incorrect.")
        guard password.utf8.count <= TextRule.password.length.upperBound,
              let user = try await users.find(email: email)
        else {
            try await hasher.verifyDecoy(password)
            try await limits.recordLoginFailure(email: email, client: client)
            throw failure
        }
        guard try await hasher.verify(password, against: user.passwordHash) else {
            try await limits.recordLoginFailure(email: email, client: client)
            throw failure
        }
        if earlierFailures > 0 { try await limits.recordLoginSuccess(email: email) }
        return (user, try await tokens.issue(for: user))
    }
}
