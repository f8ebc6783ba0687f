import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import OpenCourse

/// The document in `HTTP/OpenAPI/openapi.json` is the contract: it is served as written, and it
/// names exactly the operations the router has (schemathesis checks the responses against it).
@Suite struct OpenAPIContractTests {
    static let methods = ["get", "put", "post", "delete", "patch", "options", "head", "trace"]

    static func bundledDocument() throws -> Data {
        try OpenAPIController.bundledDocument()
    }

    @Test func routerAndDocumentNameTheSameOperations() async throws {
        let document = try #require(try JSONSerialization.jsonObject(with: Self.bundledDocument()) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        let documented = Set(paths.flatMap { path, item in
            item.keys.filter(Self.methods.contains).map { "\($0.uppercased()) \(path)" }
        })

        let configuration = testConfiguration(.sqlite(path: ":memory:"))
        let backend = try await configuration.database.open(poolSize: 1, logger: testLogger)
        let routed = try await backend.whileRunning(logger: testLogger) { backend in
            let dependencies = await Dependencies(
                configuration, database: backend, metrics: AppMetrics(), readiness: Readiness(), attemptStore: nil, logger: testLogger
            )
            return Set(try buildRoutes(configuration, dependencies, logger: testLogger).router.routes.map { "\($0.method.rawValue) \($0.path)" })
        }

        #expect(routed.count >= 18, "the router lists its routes: \(routed.sorted())")
        #expect(routed.subtracting(documented).sorted() == [], "routes the document lacks")
        #expect(documented.subtracting(routed).sorted() == [], "documented operations the router lacks")
    }

    @Test func everyOperationDocumentsItsErrorsAsProblems() throws {
        let document = try #require(try JSONSerialization.jsonObject(with: Self.bundledDocument()) as? [String: Any])
        #expect((document["openapi"] as? String)?.hasPrefix("3.1.") == true)
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        let shared = (document["components"] as? [String: Any])?["responses"] as? [String: [String: Any]] ?? [:]
        for (path, item) in paths {
            for method in Self.methods {
                guard let operation = item[method] as? [String: Any] else { continue }
                let responses = try #require(operation["responses"] as? [String: [String: Any]], "\(method) \(path) has responses")
                #expect(responses.keys.contains { $0.hasPrefix("2") }, "\(method) \(path) documents a success")
                #expect(operation["operationId"] is String, "\(method) \(path) has an operationId")
                for (status, response) in responses where status.hasPrefix("4") || status.hasPrefix("5") {
                    let resolved = (response["$ref"] as? String).flatMap { shared[String($0.split(separator: "/").last ?? "")] } ?? response
                    let content = resolved["content"] as? [String: Any]
                    #expect(content?.keys.sorted() == ["application/problem+json"], "\(method) \(path) \(status) is a problem")
                }
            }
        }
    }

    @Test func theDocumentIsServedAsWrittenAndCacheable() async throws {
        let bundled = try Self.bundledDocument()
        try await withApp(.sqlite) { client in
            let response = try await client.call(.get, "/api/v1/openapi.json")
            #expect(response.status == .ok)
            #expect(response.body == bundled)
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            #expect(response.headers[.cacheControl]?.hasPrefix("public") == true)
            let etag = try #require(response.headers[.eTag])
            let again = try await client.call(.get, "/api/v1/openapi.json", headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified)
        }
    }
}
