import Foundation

/// Who is enrolled where.
public struct EnrollmentService: Sendable {
    let enrollments: any EnrollmentRepository
    let courses: CourseService

    public init(enrollments: any EnrollmentRepository, courses: CourseService) {
        self.enrollments = enrollments
        self.courses = courses
    }

    /// Idempotent: enrolling again returns the existing enrollment with `created` false.
    public func enroll(_ identity: Identity, in courseID: UUID) async throws -> (enrollment: Enrollment, created: Bool) {
        let (id, now) = RecordStamp.next()
        let candidate = Enrollment(id: id, userID: identity.userID, courseID: courseID, enrolledAt: now)
        guard let result = try await enrollments.enroll(candidate) else { throw CourseService.notFound }
        return result
    }

    public func unenroll(_ identity: Identity, from courseID: UUID) async throws {
        guard try await enrollments.unenroll(userID: identity.userID, courseID: courseID) else {
            throw AppError.notFound("You are not enrolled in this course.")
        }
    }

    public func enrollments(of identity: Identity, _ query: ListQuery) async throws -> Page<EnrolledCourse> {
        let page = try Self.page(query)
        let rows = try await enrollments.list(userID: identity.userID, page: page)
        return Page(fetched: rows, request: page) { Cursor(timestamp: $0.enrollment.enrolledAt, id: $0.enrollment.id) }
    }

    public func roster(by identity: Identity, courseID: UUID, _ query: ListQuery) async throws -> Page<RosterEntry> {
        let course = try await courses.course(id: courseID)
        try AccessPolicy.require(identity, may: .viewRoster(owner: course.createdBy))
        let page = try Self.page(query)
        let rows = try await enrollments.roster(courseID: courseID, page: page)
        return Page(fetched: rows, request: page) { Cursor(timestamp: $0.enrollment.enrolledAt, id: $0.enrollment.id) }
    }

    private static func page(_ query: ListQuery) throws -> PageRequest {
        var validator = Validator()
        let page = try PageRequest.parse(limit: query.limit, cursor: query.cursor, validator: &validator)
        try validator.check()
        return page
    }
}
