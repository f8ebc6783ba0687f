import Foundation
import SQLKit
import Testing
@testable import OpenCourse

@Suite("Races")
struct ConcurrencyTests {
    @Test(arguments: TestDatabase.allCases)
    func simultaneousRegistrationsOfOneEmailMakeOneUser(database: TestDatabase) async throws {
        try await withAppAndDatabase(database) { client, backend in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<2 {
                    group.addTask {
                        let email = index == 0 ? "race@example.com" : "RACE@example.com"
                        return Int(try await client.call(.post, "/api/v1/auth/register", json: ["email": email, "password": "password123"]).status.code)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.sorted() == [201, 409])
            let count = try await backend.sql.raw("SELECT COUNT(*) AS n FROM users WHERE email = 'race@example.com'").first()
            #expect(try count?.decode(column: "n", as: Int.self) == 1)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func twentySimultaneousEnrollmentsMakeOneRow(database: TestDatabase) async throws {
        try await withAppAndDatabase(database) { client, backend in
            let (owner, _) = try await client.register(role: "instructor")
            let (student, _) = try await client.register()
            let course = try await client.createCourse(token: owner)
            let responses = try await withThrowingTaskGroup(of: APIResponse.self) { group in
                for _ in 0..<20 {
                    group.addTask { try await client.call(.post, "/api/v1/courses/\(course)/enroll", token: student) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(responses.filter { $0.status == .created }.count == 1)
            #expect(responses.filter { $0.status == .ok }.count == 19)
            #expect(Set(responses.compactMap { $0.string("id") }).count == 1)
            let count = try await backend.sql.raw("SELECT COUNT(*) AS n FROM enrollments").first()
            #expect(try count?.decode(column: "n", as: Int.self) == 1)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func deletingACourseWhilePeopleEnrollLeavesNoOrphans(database: TestDatabase) async throws {
        try await withAppAndDatabase(database) { client, backend in
            let (owner, _) = try await client.register(role: "instructor")
            var students: [String] = []
            for _ in 0..<12 { students.append(try await client.register().token) }
            let course = try await client.createCourse(token: owner)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for (index, student) in students.enumerated() {
                    group.addTask { Int(try await client.call(.post, "/api/v1/courses/\(course)/enroll", token: student).status.code) }
                    if index == students.count / 2 {
                        group.addTask { Int(try await client.call(.delete, "/api/v1/courses/\(course)", token: owner).status.code) + 1000 }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.contains(1204))
            #expect(statuses.allSatisfy { [201, 404, 1204].contains($0) }, "\(statuses)")
            let orphans = try await backend.sql.raw("""
                SELECT COUNT(*) AS n FROM enrollments e
                WHERE NOT EXISTS (SELECT 1 FROM courses c WHERE c.id = e.course_id)
                """).first()
            #expect(try orphans?.decode(column: "n", as: Int.self) == 0)
            let remaining = try await backend.sql.raw("SELECT COUNT(*) AS n FROM enrollments").first()
            #expect(try remaining?.decode(column: "n", as: Int.self) == 0)
        }
    }
}
