import Foundation
import HTTPTypes
import Synchronization
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

    /// A stolen token must not allow unlimited guesses at the password: wrong `currentPassword`s
    /// count as failed sign-ins of the account and the address, and a locked account can neither
    /// sign in nor change its password. Each call comes from its own address unless it says.
    @Test func currentPasswordGuessesShareTheSignInLockout() async throws {
        try await withApp(.sqlite, framework: .live, configure: {
            $0.loginMaxFailures = 3
            $0.trustedProxies = [try #require(IPRange("127.0.0.1"))]
        }) { client in
            let addresses = Mutex(0)
            func from(_ address: String? = nil) -> HTTPFields {
                [.xForwardedFor: address ?? "198.51.100.\(addresses.withLock { $0 += 1; return $0 })"]
            }
            func change(_ token: String, _ currentPassword: String, from address: String? = nil) async throws -> APIResponse {
                try await client.call(.put, "/api/v1/users/me", json: ["password": "takenover1", "currentPassword": currentPassword],
                                      token: token, headers: from(address))
            }
            func login(_ email: String, _ password: String, from address: String? = nil) async throws -> APIResponse {
                try await client.call(.post, "/api/v1/auth/login", json: ["email": email, "password": password], headers: from(address))
            }
            let (token, _) = try await client.register("guessed@example.com")
            for guess in ["guess-one", "guess-two", "guess-three"] { #expect(try await change(token, guess).status == .forbidden) }
            let locked = try await change(token, "password123")
            #expect(locked.status == .tooManyRequests)
            #expect(locked.isProblem && locked.headers[.retryAfter] != nil)
            #expect(try await login("guessed@example.com", "password123").status == .tooManyRequests)
            // A name change needs no password and is not locked out.
            #expect(try await client.call(.put, "/api/v1/users/me", json: ["name": "Still me"], token: token, headers: from()).status == .ok)

            // The other way round: failed sign-ins lock the password change too.
            let (other, _) = try await client.register("other@example.com")
            for _ in 0..<3 { #expect(try await login("other@example.com", "wrong-password").status == .unauthorized) }
            #expect(try await change(other, "password123").status == .tooManyRequests)

            // Guesses from one address lock that address for every account.
            let (third, _) = try await client.register("third@example.com")
            try await client.register("fourth@example.com")
            for guess in ["a-guess-1", "a-guess-2", "a-guess-3"] { #expect(try await change(third, guess, from: "203.0.113.50").status == .forbidden) }
            #expect(try await login("fourth@example.com", "password123", from: "203.0.113.50").status == .tooManyRequests)
            #expect(try await login("fourth@example.com", "password123").status == .ok)
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
