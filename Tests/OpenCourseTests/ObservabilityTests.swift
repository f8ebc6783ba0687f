import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
@testable import OpenCourse

@Suite("Request ids, access log, metrics")
struct ObservabilityTests {
    @Test func requestIDsAreKeptWhenSaneAndMadeOtherwise() async throws {
        try await withApp(.sqlite) { client in
            let kept = try await client.call(.get, "/health", headers: [.requestID: "abc-123_X.y"])
            #expect(kept.headers[.requestID] == "abc-123_X.y")
            for bad in ["", String(repeating: "a", count: 129), "has space", "semi;colon", "ünï"] {
                let response = try await client.call(.get, "/api/v1/nope", headers: [.requestID: bad])
                let id = try #require(response.headers[.requestID])
                #expect(id != bad && RequestObservabilityMiddleware.acceptable(id) == id, "\(bad)")
            }
            let first = try #require(try await client.call(.get, "/health").headers[.requestID])
            let second = try #require(try await client.call(.get, "/health").headers[.requestID])
            #expect(first != second)
            #expect(RequestObservabilityMiddleware.acceptable(first) == first)
        }
    }

    @Test func oneAccessLinePerRequestWithRouteUserAndNoSecrets() async throws {
        let capture = LogCapture()
        try await withApp(.sqlite, logger: capture.logger()) { client in
            let (token, userID) = try await client.register("logged@example.com", password: "hunter2-secret-pass")
            let course = try await client.call(.get, "/api/v1/courses/\(UUID())", headers: [.requestID: "trace-me-1"])
            #expect(course.status == .notFound)
            _ = try await client.call(.get, "/api/v1/users/me", token: token, headers: [.requestID: "trace-me-2"])
            _ = try await client.call(.post, "/api/v1/auth/login", json: ["email": "logged@example.com", "password": "hunter2-secret-pass"])
            _ = try await client.call(.put, "/api/v1/users/me", json: ["password": "another-secret-1", "currentPassword": "hunter2-secret-pass"], token: token)

            let lines = capture.objects(message: "request")
            #expect(lines.count == 5)
            let notFound = try #require(lines.first { $0["request_id"] == "trace-me-1" })
            #expect(notFound["method"] == "GET")
            #expect(notFound["status"] == "404")
            #expect(notFound["route"]?.contains("courses") == true)
            #expect(notFound["route"]?.contains("{id}") == true || notFound["route"]?.contains(":id") == true)
            #expect(Double(notFound["duration_ms"] ?? "") != nil)
            #expect(notFound["level"] == "info" && notFound["ts"] != nil)
            let me = try #require(lines.first { $0["request_id"] == "trace-me-2" })
            #expect(me["user_id"] == userID)
            #expect(me["status"] == "200")

            let everything = capture.all.joined(separator: "\n")
            for secret in ["hunter2-secret-pass", "another-secret-1", token, String(token.prefix(20)), "Bearer"] {
                #expect(!everything.contains(secret), "\(secret.prefix(12)) leaked into the log")
            }
        }
    }

    @Test func textFormatIsOneReadableLine() async throws {
        let capture = LogCapture()
        try await withApp(.sqlite, logger: capture.logger(format: .text)) { client in
            _ = try await client.call(.get, "/health", headers: [.requestID: "text-1"])
            let line = try #require(capture.all.first { $0.contains("request_id=text-1") })
            #expect(line.contains("INFO request"))
            #expect(line.contains("status=200"))
            #expect(!line.contains("\n"))
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func metricsInPrometheusFormat(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (token, _) = try await client.register()
            _ = try await client.call(.post, "/api/v1/auth/login", json: ["email": "nobody@example.com", "password": "password123"])
            for _ in 0..<3 { _ = try await client.call(.get, "/api/v1/courses/\(UUID())") }
            _ = try await client.call(.get, "/api/v1/users/me", token: token)
            let scrape = try await client.call(.get, "/metrics")
            #expect(scrape.status == .ok)
            #expect(scrape.headers[.contentType]?.hasPrefix("text/plain") == true)
            let text = String(decoding: scrape.body, as: UTF8.self)
            let notFoundLine = try #require(text.split(separator: "\n").first {
                $0.hasPrefix("http_requests_total") && $0.contains("status=\"404\"") && $0.contains("courses")
            })
            #expect(notFoundLine.hasSuffix(" 3"))
            #expect(!text.contains(UUID().uuidString.prefix(4).lowercased() + "never"))
            #expect(text.contains("http_request_duration_seconds_bucket"))
            #expect(text.contains("opencourse_bcrypt_operations_total{operation=\"hash\"} 1"))
            #expect(text.contains("opencourse_bcrypt_operations_total{operation=\"verify\"} 1"))
            #expect(text.contains("opencourse_db_pool_connections_in_use"))
            #expect(text.contains("opencourse_db_pool_requests_waiting"))
            // Route patterns, never raw ids, label the series.
            #expect(!text.split(separator: "\n").contains { $0.hasPrefix("http_requests_total") && $0.contains("-4") })
        }
    }

    @Test func metricsTokenGuardsTheEndpoint() async throws {
        try await withApp(.sqlite, configure: { $0.metricsToken = "scrape-secret" }) { client in
            let anonymous = try await client.call(.get, "/metrics")
            #expect(anonymous.status == .unauthorized)
            #expect(anonymous.isProblem)
            #expect(try await client.call(.get, "/metrics", token: "wrong").status == .unauthorized)
            #expect(try await client.call(.get, "/metrics", token: "scrape-secret").status == .ok)
        }
    }
}
