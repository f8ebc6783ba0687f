import Foundation

/// Every role and ownership rule of the API, in one place.
enum AccessPolicy {
    enum Action {
        case createCourse
        /// Update or delete a course owned by `owner`.
        case manageCourse(owner: UUID)
        /// Read the roster of a course owned by `owner`.
        case viewRoster(owner: UUID)
    }

    static func require(_ identity: Identity, may action: Action) throws {
        let allowed: Bool
        switch action {
        case .createCourse:
            allowed = identity.role == .instructor || identity.role == .admin
        case .manageCourse(let owner), .viewRoster(let owner):
            allowed = identity.role == .admin || identity.userID == owner
        }
        guard allowed else { throw AppError.forbidden(message(for: action)) }
    }

    private static func message(for action: Action) -> String {
        switch action {
        case .createCourse: return "Only instructors and admins can create courses."
        case .manageCourse: return "Only the course's owner or an admin can change it."
        case .viewRoster: return "Only the course's owner or an admin can see its enrollments."
        }
    }
}
