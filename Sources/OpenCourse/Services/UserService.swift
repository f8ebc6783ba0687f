import Foundation

/// The signed-in user's own account, and the operator's admin bootstrap.
public struct UserService: Sendable {
    let users: any UserRepository
    let hasher: PasswordHasher

    public init(users: any UserRepository, hasher: PasswordHasher) {
        self.users = users
        self.hasher = hasher
    }

    public func profile(of identity: Identity) async throws -> User {
        guard let user = try await users.find(id: identity.userID) else {
            throw AppError.unauthorized("The account of this token no longer exists.")
        }
        return user
    }

    /// Changes name, email or password. Email and password changes need the current password;
    /// the role is never changed here.
    public func updateProfile(of identity: Identity, with input: ProfileUpdateInput) async throws -> User {
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
            guard let current = currentPassword.value ?? nil,
                  current.utf8.count <= TextRule.password.length.upperBound,
                  try await hasher.verify(current, against: original.passwordHash)
            else {
                throw AppError.forbidden("Changing email or password requires the correct currentPassword.")
            }
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

    /// Creates an admin, or promotes an existing account (whose password becomes the one given).
    public func createAdmin(email rawEmail: String, password rawPassword: String) async throws -> (user: User, created: Bool) {
        var validator = Validator()
        let email = validator.text(rawEmail, field: "email", rule: .email)
        let password = validator.text(rawPassword, field: "password", rule: .password)
        try validator.check()
        guard let email, let password else { throw AppError.validation(validator.errors) }
        let passwordHash = try await hasher.hash(password)
        let (id, now) = RecordStamp.next()
        let candidate = User(
            id: id, email: email, passwordHash: passwordHash,
            name: nil, role: .admin, createdAt: now, updatedAt: now
        )
        return try await users.upsertAdmin(candidate)
    }
}
