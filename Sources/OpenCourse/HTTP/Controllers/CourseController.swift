import Foundation
import Hummingbird

/// The catalog under `/courses`: reads are public, writes need a signed-in caller.
struct CourseController {
    let courses: CourseService
    let authentication: AuthenticationMiddleware
    let catalog: CatalogResponses

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get(use: list)
        group.get(":id", use: show)
        group.group()
            .add(middleware: authentication)
            .post(use: create)
            .put(":id", use: update)
            .patch(":id", use: update)
            .delete(":id", use: delete)
    }

    /// Queries: one keyset SELECT on a cache miss, none on a hit.
    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let path = request.uri.path
        let page = try catalogPage(path: path, query: request.uri.query)
        let courses = self.courses
        return try await catalog.respond(to: request, key: page.key) {
            let found = try await courses.list(page.request)
            return try CatalogResponses.representation(
                of: PagedResponse.body(found, CourseRepresentation.init), link: PagedResponse.link(found, path: path, query: page.parameters)
            )
        }
    }

    /// Queries: one primary-key SELECT on a cache miss, none on a hit.
    @Sendable func show(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.courseID()
        let courses = self.courses
        return try await catalog.respond(to: request, key: .course(id)) {
            try CatalogResponses.representation(of: CourseRepresentation(try await courses.course(id: id)))
        }
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<CourseRepresentation> {
        let input = try await request.decode(as: CourseInput.self, context: context)
        let course = try await courses.create(by: try context.requireIdentity(), input)
        return EditedResponse(
            status: .created,
            headers: [.location: "/api/v1/courses/\(course.id.apiString)"],
            response: CourseRepresentation(course)
        )
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> CourseRepresentation {
        let id = try context.courseID()
        let input = try await request.decode(as: CourseInput.self, context: context)
        return CourseRepresentation(try await courses.update(by: try context.requireIdentity(), id: id, input))
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await courses.delete(by: try context.requireIdentity(), id: try context.courseID())
        return Response(status: .noContent)
    }
}

extension CourseController {
    /// A catalog page as asked for: validated, with its cache key.
    struct CatalogPage {
        let request: CatalogRequest
        let parameters: KnownQuery
        let key: CatalogCache.Key
    }

    /// `query` as sent, without the `?`.
    func catalogPage(path: String, query: String?) throws -> CatalogPage {
        let parameters = try QueryParameters.read(query: query, ["limit", "cursor", "q", "createdBy"])
        let request = try courses.catalogRequest(CatalogQuery(
            page: ListQuery(parameters),
            q: parameters["q"],
            createdBy: parameters["createdBy"]
        ))
        // Everything the cached representation depends on: the path and the known parameters as
        // sent (absent apart from empty), which the Link header repeats.
        let key = ([path] + parameters.names.map { parameters[$0].map { "=" + $0 } ?? "-" }).joined(separator: "&")
        return CatalogPage(request: request, parameters: parameters, key: .page(key))
    }

    /// What the cache holds for a catalog page or a course, if anything; nil for a request that
    /// is not valid (the handlers above answer those).
    func cached(path: String, query: String?) -> CachedRepresentation? {
        guard let cache = catalog.cache else { return nil }
        if path == Self.catalogPath {
            return (try? catalogPage(path: path, query: query)).flatMap { cache.cached($0.key) }
        }
        guard path.hasPrefix(Self.coursePathPrefix), let id = UUID(apiString: path.dropFirst(Self.coursePathPrefix.count)) else {
            return nil
        }
        return cache.cached(.course(id))
    }

    static let catalogPath = "/api/v1/courses"
    /// The route's name in metrics and logs.
    static let courseRoute = "/api/v1/courses/{id}"
    static let coursePathPrefix = catalogPath + "/"
}

extension AppRequestContext {
    /// The `:id` path parameter; a malformed id names no course, so it is a 404 like an unknown one.
    func courseID() throws -> UUID {
        guard let raw = parameters.get("id"), let id = UUID(apiString: raw) else {
            throw CourseService.notFound
        }
        return id
    }
}

extension ListQuery {
    static let parameterNames = ["limit", "cursor"]

    init(_ parameters: KnownQuery) {
        self.init(limit: parameters["limit"], cursor: parameters["cursor"])
    }
}
