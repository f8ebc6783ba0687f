import Foundation
import Hummingbird
import NIOCore

/// Serves the API's contract, `HTTP/OpenAPI/openapi.json`, as written: the document is the source
/// of truth that the tests hold the router and the fuzzer hold the responses to.
struct OpenAPIController {
    let document: CachedRepresentation

    /// Reads the document bundled with the library once, at start.
    init() throws {
        self.document = CachedRepresentation(body: ByteBuffer(bytes: try Self.bundledDocument()))
    }

    static func bundledDocument() throws -> Data {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json") else {
            throw OpenAPIDocumentMissing()
        }
        return try Data(contentsOf: url)
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("openapi.json", use: serve)
    }

    @Sendable func serve(_ request: Request, context: AppRequestContext) async throws -> Response {
        CatalogResponses.response(to: request, representation: document, cacheControl: "public, max-age=300")
    }
}

struct OpenAPIDocumentMissing: Error, CustomStringConvertible {
    var description: String { "openapi.json is missing from the OpenCourse resource bundle" }
}
