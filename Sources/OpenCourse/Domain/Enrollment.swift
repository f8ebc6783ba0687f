import Foundation

public struct Enrollment: Sendable, Equatable {
    public var id: UUID
    public var userID: UUID
    public var courseID: UUID
    public var enrolledAt: Date
}

/// One of the caller's enrollments together with the course it is for.
public struct EnrolledCourse: Sendable, Equatable {
    public var enrollment: Enrollment
    public var course: Course
}

/// One line of a course roster.
public struct RosterEntry: Sendable, Equatable {
    public var enrollment: Enrollment
    public var user: UserSummary
}
