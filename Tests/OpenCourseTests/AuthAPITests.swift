import Foundation
import HTTPTypes
import Testing
@testable import OpenCourse

@Suite("Registration and login")
struct AuthAPITests {
    @Test(arguments: TestDatabase.allCases)
    func registerReturnsUserAndToken(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let response = try await client.call(.post, "/api/v1/auth/register", json: [
                "email": "  Ina@Example.COM ", "password": "password123", "name": "Ina", "role": "instructor",
            ])
            #expect(response.status == .created)
            #expect(Set(response.json?.keys ?? [:].keys) == ["user", "accessToken", "tokenType", "expiresIn"])
            #expect(response.string("tokenType") == "Bearer")
            #expect(response.json?["expiresIn"] as? Int == 3600)
            let user = try #require(response.object("user"))
            #expect(Set(user.keys) == ["id", "email", "name", "role", "createdAt", "updatedAt"])
            #expect(user["email"] as? String == "ina@example.com")
            #expect(user["role"] as? String == "instructor")
            #expect(user["name"] as? String == "Ina")
            let createdAt = try #require(user["createdAt"] as? String)
            #expect(createdAt.hasSuffix("Z") && createdAt.contains("T"))
            #expect(!String(decoding: response.body, as: UTF8.self).contains("password"))
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func studentIsTheDefaultRoleAndNameMayBeOmitted(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let response = try await client.call(.post, "/api/v1/auth/register", json: ["email": "s@example.com", "password": "password123"])
            #expect(response.status == .created)
            #expect(response.object("user")?["role"] as? String == "student")
            #expect(response.object("user")?["name"] is NSNull)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func duplicateEmailInAnyCaseIsAConflict(database: TestDatabase) async throws {
        try await withApp(database) { client in
            try await client.register("dup@example.com")
            let response = try await client.call(.post, "/api/v1/auth/register", json: ["email": "DUP@example.COM", "password": "password123"])
            #expect(response.status == .conflict)
            #expect(response.isProblem)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func invalidRegistrationListsEveryBadField(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let response = try await client.call(.post, "/api/v1/auth/register", json: [
                "email": "not-an-email", "password": "short", "role": "admin", "name": String(repeating: "x", count: 101),
            ])
            #expect(response.status == .unprocessableContent)
            #expect(response.isProblem)
            #expect(response.errorFields == ["email", "password", "role", "name"])
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func registrationFieldRules(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let cases: [([String: any Sendable], String)] = [
                (["password": "password123"], "email"),
                (["email": "a@example.com"], "password"),
                (["email": 42, "password": "password123"], "email"),
                (["email": "a@example.com", "password": 12345678], "password"),
                (["email": "a@example.com", "password": "password123", "name": 7], "name"),
                (["email": "a@example.com", "password": "password123", "role": "teacher"], "role"),
                (["email": "a@example.com", "password": "password123", "role": 1], "role"),
                (["email": "a@example.com", "password": "password123", "name": "nul\u{0}byte"], "name"),
                (["email": "a@example.com", "password": String(repeating: "é", count: 37)], "password"), // 74 bytes
                (["email": String(repeating: "a", count: 250) + "@example.com", "password": "password123"], "email"),
                (["email": "a b@example.com", "password": "password123"], "email"),
            ]
            for (body, field) in cases {
                let response = try await client.call(.post, "/api/v1/auth/register", json: body)
                #expect(response.status == .unprocessableContent, "\(body)")
                #expect(response.errorFields == [field], "\(body)")
            }
            // 72 bytes of UTF-8 is the most bcrypt can use, and is accepted.
            let longest = try await client.call(.post, "/api/v1/auth/register", json: [
                "email": "long@example.com", "password": String(repeating: "é", count: 36),
            ])
            #expect(longest.status == .created)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func malformedBodiesAreBadRequests(database: TestDatabase) async throws {
        try await withApp(database) { client in
            for raw in [Data("{bad".utf8), Data("[1, 2]".utf8), Data("\"text\"".utf8), Data(), Data([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D])] {
                let response = try await client.call(.post, "/api/v1/auth/register", raw: raw)
                #expect(response.status == .badRequest, "\(Array(raw))")
                #expect(response.isProblem)
            }
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func loginIgnoresEmailCaseAndReturnsAToken(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let registered = try await client.register("Login@Example.com")
            let response = try await client.call(.post, "/api/v1/auth/login", json: ["email": " LOGIN@example.COM", "password": "password123"])
            #expect(response.status == .ok)
            #expect(Set(response.json?.keys ?? [:].keys) == ["accessToken", "tokenType", "expiresIn", "user"])
            #expect(response.object("user")?["id"] as? String == registered.id)
            let token = try #require(response.string("accessToken"))
            let me = try await client.call(.get, "/api/v1/users/me", token: token)
            #expect(me.status == .ok)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func failedLoginsAllLookTheSame(database: TestDatabase) async throws {
        try await withApp(database) { client in
            try await client.register("known@example.com")
            var details: Set<String> = []
            for body in [
                ["email": "known@example.com", "password": "wrongpassword"],
                ["email": "unknown@example.com", "password": "password123"],
                ["email": "known@example.com", "password": String(repeating: "x", count: 100)],
            ] {
                let response = try await client.call(.post, "/api/v1/auth/login", json: body)
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
                #expect(response.isProblem)
                details.insert(response.string("detail") ?? "")
            }
            #expect(details.count == 1)
            let missing = try await client.call(.post, "/api/v1/auth/login", json: ["email": "known@example.com"])
            #expect(missing.status == .unprocessableContent)
            #expect(missing.errorFields == ["password"])
        }
    }
}
