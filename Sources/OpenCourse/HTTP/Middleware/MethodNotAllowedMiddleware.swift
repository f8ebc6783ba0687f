import Hummingbird

/// Turns the router's "no route" into 405 with `Allow` when the path exists under other methods
/// (RFC 9110 15.5.6); Hummingbird itself answers 404 for both. Added after every route, so it
/// wraps only the router's not-found responder.
struct MethodNotAllowedMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    /// Each route's path split into segments (`{name}` matches any one segment), with its methods.
    private let routes: [(segments: [Substring], methods: [HTTPRequest.Method])]

    init(routes: [Router<AppRequestContext>.RouteDescription]) {
        var byPath: [String: [HTTPRequest.Method]] = [:]
        for route in routes {
            byPath[route.path.description, default: []].append(route.method)
            // The router answers HEAD for every GET (autoGenerateHeadEndpoints).
            if route.method == .get { byPath[route.path.description, default: []].append(.head) }
        }
        self.routes = byPath.map { path, methods in
            (path.split(separator: "/"), methods.sorted { $0.rawValue < $1.rawValue })
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = allowedMethods(for: request.uri.path)
            guard !allowed.isEmpty else { throw error }
            throw HTTPError(
                .methodNotAllowed,
                headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")],
                message: "\(request.method.rawValue) is not allowed here; use \(allowed.map(\.rawValue).joined(separator: " or "))."
            )
        }
    }

    func allowedMethods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/")
        // As the router does, a literal segment wins over a capture: the match with most literals.
        let matches = routes.filter { route in
            route.segments.count == segments.count
                && zip(route.segments, segments).allSatisfy { pattern, segment in
                    pattern == segment || Self.isCapture(pattern)
                }
        }
        return matches.max { literals($0.segments) < literals($1.segments) }?.methods ?? []
    }

    private func literals(_ segments: [Substring]) -> Int {
        segments.count { !Self.isCapture($0) }
    }

    private static func isCapture(_ segment: Substring) -> Bool {
        segment.hasPrefix("{") && segment.hasSuffix("}")
    }
}
