import Foundation
import Testing
@testable import OpenCourse

@Suite("The public catalog")
struct CatalogTests {
    @Test(arguments: TestDatabase.allCases)
    func pagingVisitsEveryCourseOnceEvenWhileCoursesAreAdded(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (owner, _) = try await client.register(role: "instructor")
            var created: [String] = []
            for index in 0..<7 {
                created.append(try await client.createCourse(token: owner, title: "Paged \(index)"))
            }
            let first = try await client.call(.get, "/api/v1/courses?limit=3")
            #expect(first.status == .ok)
            #expect(first.items.count == 3)
            let link = try #require(first.headers[.link])
            #expect(link.hasPrefix("</api/v1/courses?") && link.hasSuffix(">; rel=\"next\""))
            let firstCursor = try #require(first.nextCursor)
            #expect(link.contains("limit=3") && link.contains("cursor=\(firstCursor)"))

            var seen = first.items.compactMap { $0["id"] as? String }
            var cursor = first.nextCursor
            var pages = 1
            while let next = cursor {
                // Courses added mid-listing are newer, so they never shift later pages.
                _ = try await client.createCourse(token: owner, title: "Late \(pages)")
                let page = try await client.call(.get, "/api/v1/courses?limit=3&cursor=\(next)")
                #expect(page.status == .ok)
                seen += page.items.compactMap { $0["id"] as? String }
                cursor = page.nextCursor
                pages += 1
                if cursor == nil { #expect(page.headers[.link] == nil) }
            }
            #expect(pages == 3)
            #expect(seen == created.reversed())
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func listShapeAndDefaultLimit(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (owner, _) = try await client.register(role: "instructor")
            for index in 0..<21 { _ = try await client.createCourse(token: owner, title: "Default \(index)") }
            let page = try await client.call(.get, "/api/v1/courses")
            #expect(Set(page.json?.keys ?? [:].keys) == ["data", "nextCursor"])
            #expect(page.items.count == 20)
            #expect(page.items.first?["title"] as? String == "Default 20")
            let all = try await client.call(.get, "/api/v1/courses?limit=100")
            #expect(all.items.count == 21)
            #expect(all.json?["nextCursor"] is NSNull)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func badPagingParameters(database: TestDatabase) async throws {
        try await withApp(database) { client in
            for query in ["limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5", "createdBy=nope"] {
                let response = try await client.call(.get, "/api/v1/courses?\(query)")
                #expect(response.status == .unprocessableContent, "\(query)")
                #expect(response.errorFields == [String(query.prefix { $0 != "=" })], "\(query)")
            }
            let forged = Data("v1.123.not-a-uuid".utf8).base64EncodedString()
            for cursor in ["garbage", "v1.", forged, "v1.MTIzNDU"] {
                let response = try await client.call(.get, "/api/v1/courses?cursor=\(cursor)")
                #expect(response.status == .badRequest, "\(cursor)")
                #expect(response.isProblem)
            }
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func titleSearchIsCaseInsensitiveAndLiteral(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (owner, ownerID) = try await client.register(role: "instructor")
            let (other, _) = try await client.register(role: "instructor")
            let percent = try await client.createCourse(token: owner, title: "100% Swift")
            let underscore = try await client.createCourse(token: owner, title: "snake_case basics")
            let plain = try await client.createCourse(token: owner, title: "Plain SWIFT course")
            let others = try await client.createCourse(token: other, title: "Other swift")

            func ids(_ query: String) async throws -> [String] {
                let response = try await client.call(.get, "/api/v1/courses?\(query)")
                #expect(response.status == .ok, "\(query)")
                return response.items.compactMap { $0["id"] as? String }
            }
            #expect(try await ids("q=swift") == [others, plain, percent])
            #expect(try await ids("q=%25") == [percent])
            #expect(try await ids("q=_") == [underscore])
            #expect(try await ids("q=e_c") == [underscore])
            #expect(try await ids("q=nothing") == [])
            #expect(try await ids("createdBy=\(ownerID)") == [plain, underscore, percent])
            #expect(try await ids("createdBy=\(ownerID)&q=SWIFT") == [plain, percent])

            // A-Z are folded, other letters matched as given: the same on SQLite and on PostgreSQL
            // whatever its locale (the test databases have a UTF-8 one, where LOWER() folds É).
            let upper = try await client.createCourse(token: other, title: "Cours d'ÉTÉ")
            let lower = try await client.createCourse(token: other, title: "Cours d'été")
            #expect(try await ids("q=\("ÉTÉ".addingPercentEncoding(withAllowedCharacters: .urlUnreserved)!)") == [upper])
            #expect(try await ids("q=\("été".addingPercentEncoding(withAllowedCharacters: .urlUnreserved)!)") == [lower])
            #expect(try await ids("q=\("d'Été".addingPercentEncoding(withAllowedCharacters: .urlUnreserved)!)") == [])
            #expect(try await ids("q=COURS") == [lower, upper, plain])
        }
    }
}
