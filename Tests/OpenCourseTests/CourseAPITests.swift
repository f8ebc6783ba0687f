import Foundation
import Testing
@testable import OpenCourse

@Suite("Courses")
struct CourseAPITests {
    @Test(arguments: TestDatabase.allCases)
    func instructorsCreateCoursesStudentsCannot(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (student, _) = try await client.register(role: "student")
            let (instructor, instructorID) = try await client.register(role: "instructor")
            let denied = try await client.call(.post, "/api/v1/courses", json: ["title": "Nope"], token: student)
            #expect(denied.status == .forbidden)
            #expect(denied.isProblem)
            let anonymous = try await client.call(.post, "/api/v1/courses", json: ["title": "Nope"])
            #expect(anonymous.status == .unauthorized)

            let created = try await client.call(.post, "/api/v1/courses", json: ["title": "  Swift on the Server ", "description": "Line one\nline two"], token: instructor)
            #expect(created.status == .created)
            let id = try #require(created.string("id"))
            #expect(created.headers[.location] == "/api/v1/courses/\(id)")
            #expect(Set(created.json?.keys ?? [:].keys) == ["id", "title", "description", "createdBy", "createdAt", "updatedAt"])
            #expect(created.string("title") == "Swift on the Server")
            #expect(created.string("description") == "Line one\nline two")
            #expect(created.string("createdBy") == instructorID)

            let fetched = try await client.call(.get, "/api/v1/courses/\(id)")
            #expect(fetched.status == .ok)
            #expect(fetched.body == created.body)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func courseFieldRules(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (instructor, _) = try await client.register(role: "instructor")
            let cases: [([String: any Sendable], Set<String>)] = [
                ([:], ["title"]),
                (["title": "   "], ["title"]),
                (["title": String(repeating: "t", count: 201)], ["title"]),
                (["title": 12], ["title"]),
                (["title": "ok", "description": String(repeating: "d", count: 10_001)], ["description"]),
                (["title": "tab\u{7}bell"], ["title"]),
                (["title": NSNull(), "description": 3], ["title", "description"]),
            ]
            for (body, fields) in cases {
                let response = try await client.call(.post, "/api/v1/courses", json: body, token: instructor)
                #expect(response.status == .unprocessableContent, "\(body)")
                #expect(response.errorFields == fields, "\(body)")
            }
            let longest = try await client.call(.post, "/api/v1/courses", json: [
                "title": String(repeating: "t", count: 200), "description": String(repeating: "d", count: 10_000),
            ], token: instructor)
            #expect(longest.status == .created)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func unknownAndMalformedIdsAreNotFound(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (instructor, _) = try await client.register(role: "instructor")
            for path in ["/api/v1/courses/not-a-uuid", "/api/v1/courses/\(UUID().uuidString)"] {
                let response = try await client.call(.get, path)
                #expect(response.status == .notFound)
                #expect(response.isProblem)
                #expect(try await client.call(.put, path, json: ["title": "x"], token: instructor).status == .notFound)
                #expect(try await client.call(.delete, path, token: instructor).status == .notFound)
            }
            let unknownRoute = try await client.call(.get, "/api/v1/nope")
            #expect(unknownRoute.status == .notFound)
            #expect(unknownRoute.isProblem)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func updatesChangeOnlyTheGivenFields(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (owner, _) = try await client.register(role: "instructor")
            let id = try await client.createCourse(token: owner, title: "Original", description: "First")
            let before = try await client.call(.get, "/api/v1/courses/\(id)")

            let patched = try await client.call(.patch, "/api/v1/courses/\(id)", json: ["description": "Second"], token: owner)
            #expect(patched.status == .ok)
            #expect(patched.string("title") == "Original")
            #expect(patched.string("description") == "Second")
            #expect(patched.string("createdAt") == before.string("createdAt"))

            let put = try await client.call(.put, "/api/v1/courses/\(id)", json: ["title": "Renamed"], token: owner)
            #expect(put.status == .ok)
            #expect(put.string("title") == "Renamed")
            #expect(put.string("description") == "Second")

            let cleared = try await client.call(.put, "/api/v1/courses/\(id)", json: ["description": NSNull()], token: owner)
            #expect(cleared.json?["description"] is NSNull)

            let invalid = try await client.call(.put, "/api/v1/courses/\(id)", json: ["title": ""], token: owner)
            #expect(invalid.status == .unprocessableContent)
            #expect(invalid.errorFields == ["title"])
            let stored = try await client.call(.get, "/api/v1/courses/\(id)")
            #expect(stored.string("title") == "Renamed")
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func onlyTheOwnerOrAnAdminManagesACourse(database: TestDatabase) async throws {
        try await withAppAndDatabase(database) { client, backend in
            let (owner, _) = try await client.register(role: "instructor")
            let (otherInstructor, _) = try await client.register(role: "instructor")
            let (student, _) = try await client.register(role: "student")
            let id = try await client.createCourse(token: owner, title: "Mine")
            for token in [otherInstructor, student] {
                #expect(try await client.call(.put, "/api/v1/courses/\(id)", json: ["title": "Theirs"], token: token).status == .forbidden)
                #expect(try await client.call(.patch, "/api/v1/courses/\(id)", json: ["title": "Theirs"], token: token).status == .forbidden)
                #expect(try await client.call(.delete, "/api/v1/courses/\(id)", token: token).status == .forbidden)
            }
            #expect(try await client.call(.get, "/api/v1/courses/\(id)").string("title") == "Mine")

            let admin = try await AdminAccounts.makeAdmin(client: client, database: backend)
            let renamed = try await client.call(.put, "/api/v1/courses/\(id)", json: ["title": "Moderated"], token: admin)
            #expect(renamed.status == .ok)
            #expect(renamed.string("title") == "Moderated")
            #expect(try await client.call(.delete, "/api/v1/courses/\(id)", token: admin).status == .noContent)
            #expect(try await client.call(.get, "/api/v1/courses/\(id)").status == .notFound)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func deletingACourseTakesItsEnrollments(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (owner, _) = try await client.register(role: "instructor")
            let (student, _) = try await client.register()
            let id = try await client.createCourse(token: owner)
            #expect(try await client.call(.post, "/api/v1/courses/\(id)/enroll", token: student).status == .created)
            #expect(try await client.call(.delete, "/api/v1/courses/\(id)", token: owner).status == .noContent)
            #expect(try await client.call(.get, "/api/v1/courses/\(id)").status == .notFound)
            #expect(try await client.call(.get, "/api/v1/users/me/enrollments", token: student).items.isEmpty)
            #expect(try await client.call(.delete, "/api/v1/courses/\(id)", token: owner).status == .notFound)
        }
    }
}
