import Foundation
import Testing
@testable import OpenCourse

@Suite("Enrollments")
struct EnrollmentAPITests {
    @Test(arguments: TestDatabase.allCases)
    func enrollingIsIdempotentAndUnenrollingIsNot(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (owner, _) = try await client.register(role: "instructor")
            let (student, studentID) = try await client.register()
            let course = try await client.createCourse(token: owner)

            let first = try await client.call(.post, "/api/v1/courses/\(course)/enroll", token: student)
            #expect(first.status == .created)
            #expect(Set(first.json?.keys ?? [:].keys) == ["id", "userId", "courseId", "enrolledAt"])
            #expect(first.string("userId") == studentID)
            #expect(first.string("courseId") == course)
            let again = try await client.call(.post, "/api/v1/courses/\(course)/enroll", token: student)
            #expect(again.status == .ok)
            #expect(again.body == first.body)

            #expect(try await client.call(.post, "/api/v1/courses/\(UUID())/enroll", token: student).status == .notFound)
            #expect(try await client.call(.post, "/api/v1/courses/zzz/enroll", token: student).status == .notFound)
            #expect(try await client.call(.post, "/api/v1/courses/\(course)/enroll").status == .unauthorized)

            #expect(try await client.call(.delete, "/api/v1/courses/\(course)/enroll", token: student).status == .noContent)
            let notEnrolled = try await client.call(.delete, "/api/v1/courses/\(course)/enroll", token: student)
            #expect(notEnrolled.status == .notFound)
            #expect(notEnrolled.isProblem)
            #expect(try await client.call(.post, "/api/v1/courses/\(course)/enroll", token: student).status == .created)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func myEnrollmentsArePagedNewestFirstWithTheirCourses(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (owner, _) = try await client.register(role: "instructor")
            let (student, _) = try await client.register()
            var courses: [String] = []
            for index in 0..<5 {
                let course = try await client.createCourse(token: owner, title: "Enrolled \(index)")
                courses.append(course)
                #expect(try await client.call(.post, "/api/v1/courses/\(course)/enroll", token: student).status == .created)
            }
            let first = try await client.call(.get, "/api/v1/users/me/enrollments?limit=2", token: student)
            #expect(first.status == .ok)
            #expect(Set(first.items.first?.keys ?? [:].keys) == ["id", "courseId", "enrolledAt", "course"])
            #expect((first.items.first?["course"] as? [String: any Sendable])?["title"] as? String == "Enrolled 4")
            var seen = first.items.compactMap { $0["courseId"] as? String }
            var cursor = first.nextCursor
            while let next = cursor {
                let page = try await client.call(.get, "/api/v1/users/me/enrollments?limit=2&cursor=\(next)", token: student)
                seen += page.items.compactMap { $0["courseId"] as? String }
                cursor = page.nextCursor
            }
            #expect(seen == courses.reversed())
            #expect(try await client.call(.get, "/api/v1/users/me/enrollments?limit=0", token: student).status == .unprocessableContent)
            #expect(try await client.call(.get, "/api/v1/users/me/enrollments").status == .unauthorized)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func rosterIsForTheOwnerAndAdminsOnly(database: TestDatabase) async throws {
        try await withAppAndDatabase(database) { client, backend in
            let (owner, _) = try await client.register(role: "instructor")
            let (other, _) = try await client.register(role: "instructor")
            let course = try await client.createCourse(token: owner)
            var students: [String] = []
            for index in 0..<3 {
                let (token, id) = try await client.register("roster-\(index)@example.com", name: "Student \(index)")
                students.append(id)
                #expect(try await client.call(.post, "/api/v1/courses/\(course)/enroll", token: token).status == .created)
            }
            let roster = try await client.call(.get, "/api/v1/courses/\(course)/enrollments?limit=2", token: owner)
            #expect(roster.status == .ok)
            let entry = try #require(roster.items.first)
            #expect(Set(entry.keys) == ["id", "userId", "enrolledAt", "user"])
            let member = try #require(entry["user"] as? [String: any Sendable])
            #expect(Set(member.keys) == ["id", "name", "email"])
            #expect(member["email"] as? String == "roster-2@example.com")
            #expect(member["name"] as? String == "Student 2")
            let next = try #require(roster.nextCursor)
            #expect(roster.headers[.link]?.contains("rel=\"next\"") == true)
            let rest = try await client.call(.get, "/api/v1/courses/\(course)/enrollments?limit=2&cursor=\(next)", token: owner)
            #expect((roster.items + rest.items).compactMap { $0["userId"] as? String } == students.reversed())
            #expect(rest.nextCursor == nil)

            let (student, _) = try await client.register()
            for token in [other, student] {
                let denied = try await client.call(.get, "/api/v1/courses/\(course)/enrollments", token: token)
                #expect(denied.status == .forbidden)
                #expect(denied.isProblem)
            }
            let admin = try await AdminAccounts.makeAdmin(client: client, database: backend)
            #expect(try await client.call(.get, "/api/v1/courses/\(course)/enrollments", token: admin).items.count == 3)
            #expect(try await client.call(.get, "/api/v1/courses/\(UUID())/enrollments", token: owner).status == .notFound)
        }
    }
}
