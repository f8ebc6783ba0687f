import Foundation

public struct User: Sendable, Equatable {
    public var id: UUID
    /// Always stored trimmed and lower-cased, so uniqueness ignores letter case.
    public var email: String
    public var passwordHash: String
    public var name: String?
    public var role: Role
    public var createdAt: Date
    public var updatedAt: Date
}

/// The public face of another user, as shown in a course roster.
public struct UserSummary: Sendable, Equatable {
    public var id: UUID
    public var name: String?
    public var email: String
}

/// Who is making a request, as proven by a verified access token.
public struct Identity: Sendable, Equatable {
    public var userID: UUID
    public var role: Role

    public init(userID: UUID, role: Role) {
        self.userID = userID
        self.role = role
    }
}
