import Foundation
import HummingbirdTesting
import Testing
@testable import OpenCourse

@Suite("Health, readiness and the HTTP edge")
struct HealthTests {
    @Test(arguments: TestDatabase.allCases)
    func healthAndReadinessOverALiveServer(database: TestDatabase) async throws {
        try await withApp(database, framework: .live) { client in
            let health = try await client.call(.get, "/health")
            #expect(health.status == .ok)
            #expect(health.json?["status"] as? String == "ok")
            #expect(health.headers[.contentType] == "application/json; charset=utf-8")
            let ready = try await client.call(.get, "/ready")
            #expect(ready.status == .ok)
            // The API itself over the socket too.
            let (token, _) = try await client.register()
            #expect(try await client.call(.get, "/api/v1/users/me", token: token).status == .ok)
        }
    }

    @Test func readinessFailsWhenTheDatabaseIsUnreachable() async throws {
        var configuration = testConfiguration(.postgres(PostgresSettings(
            host: "127.0.0.1", port: ServerProcess.closedPort, username: "postgres", password: nil, database: "none", tls: .disable
        )))
        configuration.migrateOnStart = false
        let app = try await buildApplication(configuration, logger: testLogger)
        try await app.test(.router) { client in
            let ready = try await client.call(.get, "/ready")
            #expect(ready.status == .serviceUnavailable)
            #expect(ready.isProblem)
            // Liveness does not depend on the database.
            #expect(try await client.call(.get, "/health").status == .ok)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func oversizedBodiesAreRejected(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let huge = Data(("{\"email\":\"" + String(repeating: "a", count: 1_100_000) + "\"}").utf8)
            let response = try await client.call(.post, "/api/v1/auth/register", raw: huge)
            #expect(response.status == .contentTooLarge)
            #expect(response.isProblem)
        }
    }

    @Test func unexpectedErrorsLeakNothing() async throws {
        struct Secret: Error, CustomStringConvertible {
            var description: String { "SELECT * FROM users at /srv/app/Repository.swift:42" }
        }
        let problem = ProblemDetailsMiddleware.problem(for: Secret(), logger: testLogger)
        #expect(problem.status == 500)
        let body = String(decoding: try APIJSON.encoder.encode(problem), as: UTF8.self)
        #expect(!body.contains("SELECT") && !body.contains("/srv"))
        #expect(body.contains("\"status\":500"))
    }
}
