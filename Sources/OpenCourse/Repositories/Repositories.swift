import Foundation

/// What a repository reports when a write breaks a rule of the schema.
public enum RepositoryError: Error, Sendable, Equatable {
    /// A unique key already holds this value (an email, say).
    case duplicate
    /// A referenced row does not exist (any more).
    case missingReference
}

public protocol UserRepository: Sendable {
    /// Inserts; throws `RepositoryError.duplicate` when the email is taken.
    func create(_ user: User) async throws -> User
    func find(id: UUID) async throws -> User?
    func find(email: String) async throws -> User?
    /// Saves every mutable field; nil when the user no longer exists. Throws `.duplicate` for a taken email.
    func update(_ user: User) async throws -> User?
    /// Makes the account with this email an admin with this password hash, creating it if needed.
    /// Returns the account and whether it was created.
    func upsertAdmin(_ candidate: User) async throws -> (user: User, created: Bool)
}

public protocol CourseRepository: Sendable {
    func create(_ course: Course) async throws -> Course
    func find(id: UUID) async throws -> Course?
    /// Newest first, at most `page.fetchLimit` rows after `page.after`.
    func list(filter: CourseFilter, page: PageRequest) async throws -> [Course]
    /// Saves title, description and updatedAt; nil when the course no longer exists.
    func update(_ course: Course) async throws -> Course?
    /// Deletes the course and, by cascade, its enrollments; false when it did not exist.
    func delete(id: UUID) async throws -> Bool
}

public protocol EnrollmentRepository: Sendable {
    /// Inserts unless the pair exists. Returns the stored enrollment and whether it was created now;
    /// nil when the course does not exist.
    func enroll(_ enrollment: Enrollment) async throws -> (enrollment: Enrollment, created: Bool)?
    /// False when the user was not enrolled.
    func unenroll(userID: UUID, courseID: UUID) async throws -> Bool
    /// The user's enrollments with their courses, newest first.
    func list(userID: UUID, page: PageRequest) async throws -> [EnrolledCourse]
    /// The course's roster, newest first.
    func roster(courseID: UUID, page: PageRequest) async throws -> [RosterEntry]
}
