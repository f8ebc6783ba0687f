import Foundation
import Testing
@testable import OpenCourse

@Suite("The signed-in user's profile")
struct UserAPITests {
    @Test(arguments: TestDatabase.allCases)
    func meReturnsTheCaller(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (token, id) = try await client.register("me@example.com", name: "Me")
            let response = try await client.call(.get, "/api/v1/users/me", token: token)
            #expect(response.status == .ok)
            #expect(Set(response.json?.keys ?? [:].keys) == ["id", "email", "name", "role", "createdAt", "updatedAt"])
            #expect(response.string("id") == id)
            #expect(response.string("email") == "me@example.com")
            #expect(response.string("name") == "Me")
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func nameChangesFreelyButRoleNever(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (token, _) = try await client.register("stu@example.com")
            let response = try await client.call(.put, "/api/v1/users/me", json: ["name": "  Stu  ", "role": "admin"], token: token)
            #expect(response.status == .ok)
            #expect(response.string("name") == "Stu")
            #expect(response.string("role") == "student")
            let cleared = try await client.call(.put, "/api/v1/users/me", json: ["name": NSNull()], token: token)
            #expect(cleared.json?["name"] is NSNull)
            let again = try await client.call(.get, "/api/v1/users/me", token: token)
            #expect(again.string("role") == "student")
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func emailAndPasswordChangesNeedTheCurrentPassword(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (token, _) = try await client.register("old@example.com")
            let withoutPassword = try await client.call(.put, "/api/v1/users/me", json: ["email": "new@example.com"], token: token)
            #expect(withoutPassword.status == .forbidden)
            #expect(withoutPassword.isProblem)
            let wrongPassword = try await client.call(.put, "/api/v1/users/me", json: ["password": "newpassword1", "currentPassword": "nope-nope"], token: token)
            #expect(wrongPassword.status == .forbidden)

            let changed = try await client.call(.put, "/api/v1/users/me", json: [
                "email": "New@Example.com", "password": "newpassword1", "currentPassword": "password123",
            ], token: token)
            #expect(changed.status == .ok)
            #expect(changed.string("email") == "new@example.com")

            let oldLogin = try await client.call(.post, "/api/v1/auth/login", json: ["email": "new@example.com", "password": "password123"])
            #expect(oldLogin.status == .unauthorized)
            let newLogin = try await client.call(.post, "/api/v1/auth/login", json: ["email": "new@example.com", "password": "newpassword1"])
            #expect(newLogin.status == .ok)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func invalidProfileFieldsAreListed(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (token, _) = try await client.register()
            let response = try await client.call(.put, "/api/v1/users/me", json: [
                "email": "bad", "password": "short", "name": 5, "currentPassword": "password123",
            ], token: token)
            #expect(response.status == .unprocessableContent)
            #expect(response.errorFields == ["email", "password", "name"])
            let notObject = try await client.call(.put, "/api/v1/users/me", raw: Data("[]".utf8), token: token)
            #expect(notObject.status == .badRequest)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func takingAnotherAccountsEmailIsAConflict(database: TestDatabase) async throws {
        try await withApp(database) { client in
            try await client.register("taken@example.com")
            let (token, _) = try await client.register("mine@example.com")
            let response = try await client.call(.put, "/api/v1/users/me", json: ["email": "TAKEN@example.com", "currentPassword": "password123"], token: token)
            #expect(response.status == .conflict)
            #expect(response.isProblem)
        }
    }
}
