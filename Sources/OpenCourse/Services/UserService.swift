import Foundation

/// The signed-in user's own account.
public struct UserService: Sendable {
    let users: any UserRepository
    let hasher: PasswordHasher
    let limits: AttemptLimits

    public init(users: any UserRepository, hasher: PasswordHasher, limits: AttemptLimits) {
        self.users = users
        self.hasher = hasher
        self.limits = limits
    }

    public func profile(of identity: Identity) async throws -> User {
        guard let user = try await users.find(id: identity.userID) else {
            throw AppError.unauthorized("The account of this token no longer exists.")
        }
        return user
    }

    /// Changes name, email or password. Email and password changes need the current password;
    /// the role is never changed here. `client` is what the sign-in limits count the caller as.
    public func updateProfile(of identity: Identity, with input: ProfileUpdateInput, from client: String) async throws -> User {
        var validator = Validator()
        let name = validator.text(input.name, field: "name", rule: .name)
        let email = validator.text(input.email, field: "email", rule: .email)
        let password = validator.text(input.password, field: "password", rule: .password)
        let currentPassword = validator.text(input.currentPassword, field: "currentPassword", rule: TextRule(trimmed: false, length: 1...1024))
        if case .set(nil) = email { validator.fail("email", "must be a string") }
        if case .set(nil) = password { validator.fail("password", "must be a string") }
        try validator.check()

        var user = try await profile(of: identity)
        let original = user
        if case .set(let newName) = name { user.name = newName.flatMap { $0.isEmpty ? nil : $0 } }
        if case .set(let newEmail?) = email { user.email = newEmail }
        let newPassword = password.value ?? nil

        if user.email != original.email || newPassword != nil {
            try await confirm(currentPassword: currentPassword.value ?? nil, of: original, from: client)
        }
        if let newPassword { user.passwordHash = try await hasher.hash(newPassword) }
        guard user != original else { return user }
        user.updatedAt = Timestamp.now()
        do {
            guard let saved = try await users.update(user) else {
                throw AppError.unauthorized("The account of this token no longer exists.")
            }
            return saved
        } catch RepositoryError.duplicate {
            throw AppError.conflict("An account with this email already exists.")
        }
    }

    /// Under the sign-in lockout: otherwise a stolen token would allow unlimited guesses at the
    /// password, which outlives the token. A wrong password counts as a failed sign-in of the
    /// account and the client; a locked account or client gets 429 whatever the password.
    private func confirm(currentPassword: String?, of user: User, from client: String) async throws {
        _ = try await limits.checkLogin(email: user.email, client: client)
        let refused = AppError.forbidden("Changing email or password requires the correct currentPassword.")
        guard let currentPassword, currentPassword.utf8.count <= TextRule.password.length.upperBound else { throw refused }
        guard try await hasher.verify(currentPassword, against: user.passwordHash) else {
            try await limits.recordLoginFailure(email: user.email, client: client)
            throw refused
        }
        try await limits.recordLoginSuccess(email: user.email)
    }
}
