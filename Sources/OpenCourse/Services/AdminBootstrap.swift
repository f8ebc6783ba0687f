import Foundation

/// The operator's way in: `opencourse create-admin` makes an admin account, or promotes an
/// existing one. Not reachable over HTTP.
public struct AdminBootstrap: Sendable {
    let users: any UserRepository
    let hasher: PasswordHasher

    public init(users: any UserRepository, hasher: PasswordHasher) {
        self.users = users
        self.hasher = hasher
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
