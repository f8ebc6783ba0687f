import Foundation

/// The catalog: who may publish and change courses, and what a valid course is.
public struct CourseService: Sendable {
    let courses: any CourseRepository
    /// Told of every successful create, update and delete (the catalog cache listens).
    let changes: (any CatalogChangeObserver)?

    public init(courses: any CourseRepository, changes: (any CatalogChangeObserver)? = nil) {
        self.courses = courses
        self.changes = changes
    }

    /// Validates a catalog query; apart from `list`, so that a cached page is never served for a
    /// query that would be refused.
    public func catalogRequest(_ query: CatalogQuery) throws -> CatalogRequest {
        var validator = Validator()
        let page = try PageRequest.parse(limit: query.page.limit, cursor: query.page.cursor, validator: &validator)
        var filter = CourseFilter()
        if let q = query.q, !q.isEmpty {
            filter.titleContains = validator.text(q, field: "q", rule: .searchText)
        }
        filter.createdBy = validator.uuid(query.createdBy, field: "createdBy")
        try validator.check()
        return CatalogRequest(filter: filter, page: page)
    }

    public func list(_ request: CatalogRequest) async throws -> Page<Course> {
        let rows = try await courses.list(filter: request.filter, page: request.page)
        return Page(fetched: rows, request: request.page) { Cursor(timestamp: $0.createdAt, id: $0.id) }
    }

    public func course(id: UUID) async throws -> Course {
        guard let course = try await courses.find(id: id) else { throw Self.notFound }
        return course
    }

    public func create(by identity: Identity, _ input: CourseInput) async throws -> Course {
        try AccessPolicy.require(identity, may: .createCourse)
        var validator = Validator()
        let title = validator.requiredText(input.title, field: "title", rule: .title)
        let description = validator.text(input.description, field: "description", rule: .description).value ?? nil
        try validator.check()
        guard let title else { throw AppError.validation(validator.errors) }
        let (id, now) = RecordStamp.next()
        let course = Course(
            id: id, title: title, description: description, createdBy: identity.userID,
            createdAt: now, updatedAt: now
        )
        do {
            let created = try await courses.create(course)
            changes?.courseChanged(created.id)
            return created
        } catch RepositoryError.missingReference {
            throw AppError.unauthorized("The account of this token no longer exists.")
        }
    }

    /// Changes the fields given and keeps the others (PUT and PATCH alike).
    public func update(by identity: Identity, id: UUID, _ input: CourseInput) async throws -> Course {
        var course = try await self.course(id: id)
        try AccessPolicy.require(identity, may: .manageCourse(owner: course.createdBy))
        var validator = Validator()
        let title = validator.text(input.title, field: "title", rule: .title)
        let description = validator.text(input.description, field: "description", rule: .description)
        if case .set(nil) = title { validator.fail("title", "must be a string") }
        try validator.check()

        let original = course
        if case .set(let newTitle?) = title { course.title = newTitle }
        if case .set(let newDescription) = description { course.description = newDescription }
        guard course != original else { return course }
        course.updatedAt = Timestamp.now()
        guard let saved = try await courses.update(course) else { throw Self.notFound }
        changes?.courseChanged(saved.id)
        return saved
    }

    public func delete(by identity: Identity, id: UUID) async throws {
        let course = try await self.course(id: id)
        try AccessPolicy.require(identity, may: .manageCourse(owner: course.createdBy))
        guard try await courses.delete(id: id) else { throw Self.notFound }
        changes?.courseChanged(id)
    }

    static let notFound = AppError.notFound("No course has this id.")
}

/// A validated catalog query.
public struct CatalogRequest: Sendable {
    public var filter: CourseFilter
    public var page: PageRequest
}
