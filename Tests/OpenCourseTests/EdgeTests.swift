import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
@testable import OpenCourse

@Suite("HTTP edge: headers, CORS, body limits")
struct EdgeTests {
    private static let helmet: [(HTTPField.Name, String)] = [
        (.xContentTypeOptions, "nosniff"),
        (.xFrameOptions, "DENY"),
        (.referrerPolicy, "no-referrer"),
        (.contentSecurityPolicy, "default-src 'none'; frame-ancestors 'none'"),
        (.crossOriginResourcePolicy, "same-origin"),
    ]

    @Test func secureHeadersOnEveryResponseErrorsIncluded() async throws {
        try await withApp(.sqlite, framework: .live) { client in
            let (token, _) = try await client.register()
            let responses = [
                try await client.call(.get, "/health"),
                try await client.call(.get, "/api/v1/users/me", token: token),
                try await client.call(.get, "/api/v1/nope"),
                try await client.call(.get, "/api/v1/users/me"),
                try await client.call(.post, "/api/v1/auth/register", raw: Data("{".utf8)),
            ]
            for response in responses {
                for (name, value) in Self.helmet {
                    #expect(response.headers[name] == value, "\(name) on \(response.status)")
                }
                #expect(response.headers[.strictTransportSecurity] == nil)
                #expect(response.headers[.server] == nil)
            }
        }
        try await withApp(.sqlite, configure: { $0.hstsEnabled = true }) { client in
            let response = try await client.call(.get, "/api/v1/nope")
            #expect(response.headers[.strictTransportSecurity]?.hasPrefix("max-age=") == true)
        }
    }

    @Test func corsFollowsTheAllowList() async throws {
        try await withApp(.sqlite, configure: { $0.corsAllowedOrigins = ["https://app.example.com"] }) { client in
            let preflight = try await client.call(.options, "/api/v1/courses", headers: [
                .origin: "https://app.example.com", .accessControlRequestMethod: "POST",
                .accessControlRequestHeaders: "authorization, content-type",
            ])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://app.example.com")
            #expect(preflight.headers[.accessControlAllowMethods]?.contains("POST") == true)
            #expect(preflight.headers[.accessControlAllowHeaders] == "Authorization, Content-Type")
            #expect(preflight.headers[.vary] == "Origin")

            let simple = try await client.call(.get, "/api/v1/courses", headers: [.origin: "https://app.example.com"])
            #expect(simple.status == .ok)
            #expect(simple.headers[.accessControlAllowOrigin] == "https://app.example.com")
            #expect(simple.headers[.vary] == "Origin")

            for origin in ["https://evil.example.com", "https://app.example.com.evil.net", "http://app.example.com"] {
                let foreign = try await client.call(.options, "/api/v1/courses", headers: [.origin: origin, .accessControlRequestMethod: "POST"])
                #expect(foreign.headers[.accessControlAllowOrigin] == nil, "\(origin)")
                #expect(foreign.headers[.accessControlAllowMethods] == nil, "\(origin)")
                #expect(foreign.headers[.vary] == "Origin")
                let read = try await client.call(.get, "/api/v1/courses", headers: [.origin: origin])
                #expect(read.headers[.accessControlAllowOrigin] == nil, "\(origin)")
            }
        }
        // The default allow-list is empty: no cross-origin access at all.
        try await withApp(.sqlite) { client in
            let preflight = try await client.call(.options, "/api/v1/courses", headers: [.origin: "https://app.example.com", .accessControlRequestMethod: "GET"])
            #expect(preflight.headers[.accessControlAllowOrigin] == nil)
        }
    }

    @Test func bodyLimitAndMediaType() async throws {
        try await withApp(.sqlite, framework: .live, configure: { $0.maxBodyBytes = 2048 }) { client in
            let big = Data(("{\"email\":\"" + String(repeating: "a", count: 4096) + "\"}").utf8)
            let tooLarge = try await client.call(.post, "/api/v1/auth/register", raw: big)
            #expect(tooLarge.status == .contentTooLarge)
            #expect(tooLarge.isProblem)

            let text = try await client.call(.post, "/api/v1/auth/register", raw: Data("email=a".utf8), headers: [.contentType: "text/plain"])
            #expect(text.status == .unsupportedMediaType)
            #expect(text.isProblem)
            let form = try await client.call(.post, "/api/v1/auth/login", raw: Data("{}".utf8), headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(form.status == .unsupportedMediaType)

            let charset = try await client.call(.post, "/api/v1/auth/register", raw: Data(#"{"email":"c@example.com","password":"password123"}"#.utf8), headers: [.contentType: "application/json; charset=utf-8"])
            #expect(charset.status == .created)
        }
    }
}
