import Hummingbird

/// Enrolling in courses, the caller's own enrollments and a course's roster; all need a signed-in caller.
struct EnrollmentController {
    let enrollments: EnrollmentService

    /// Routes under `/courses`.
    func addCourseRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post(":id/enroll", use: enroll)
        group.delete(":id/enroll", use: unenroll)
        group.get(":id/enrollments", use: roster)
    }

    /// Routes under `/users`.
    func addUserRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("me/enrollments", use: mine)
    }

    @Sendable func enroll(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<EnrollmentRepresentation> {
        let (enrollment, created) = try await enrollments.enroll(try context.requireIdentity(), in: try context.courseID())
        return EditedResponse(status: created ? .created : .ok, response: EnrollmentRepresentation(enrollment))
    }

    @Sendable func unenroll(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await enrollments.unenroll(try context.requireIdentity(), from: try context.courseID())
        return Response(status: .noContent)
    }

    @Sendable func mine(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<PageRepresentation<EnrolledCourseRepresentation>> {
        let query = try QueryParameters.read(request, ListQuery.parameterNames)
        let page = try await enrollments.enrollments(of: try context.requireIdentity(), ListQuery(query))
        return PagedResponse.make(page, for: request, query: query, EnrolledCourseRepresentation.init)
    }

    @Sendable func roster(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<PageRepresentation<RosterEntryRepresentation>> {
        let query = try QueryParameters.read(request, ListQuery.parameterNames)
        let page = try await enrollments.roster(by: try context.requireIdentity(), courseID: try context.courseID(), ListQuery(query))
        return PagedResponse.make(page, for: request, query: query, RosterEntryRepresentation.init)
    }
}
