/// The roles of the `roles` table. Raw values are what the database and the API carry.
public enum Role: String, Sendable, Codable, CaseIterable {
    case student
    case instructor
    case admin

    /// Roles a person may pick when registering; admins come only from the `create-admin` command.
    static let selfAssignable: [Role] = [.student, .instructor]
}
