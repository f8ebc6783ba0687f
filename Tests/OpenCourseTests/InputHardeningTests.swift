import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import OpenCourse

/// Hostile input gets a 4xx problem naming what is wrong, never a 5xx or a crash, and changes nothing.
@Suite("Input hardening")
struct InputHardeningTests {
    struct BodyCase: Sendable, CustomTestStringConvertible {
        var name: String
        var body: Data
        var status: HTTPResponse.Status
        var field: String? = nil
        var testDescription: String { name }
    }

    static let bodyCases: [BodyCase] = [
        BodyCase(name: "arrays nested 100,000 deep", body: Data((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8), status: .badRequest),
        BodyCase(name: "objects nested 10,000 deep", body: Data((String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000)).utf8), status: .badRequest),
        BodyCase(name: "deep value in a field", body: Data(("{\"email\":" + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}").utf8), status: .badRequest),
        BodyCase(name: "invalid UTF-8 in a value", body: Data(#"{"email":"a"#.utf8) + Data([0xFF, 0xFE]) + Data(#"@example.com","password":"password123"}"#.utf8), status: .badRequest),
        BodyCase(name: "invalid UTF-8 in a name", body: Data(#"{"em"#.utf8) + Data([0xC3]) + Data(#"":"a@example.com","password":"password123"}"#.utf8), status: .badRequest),
        BodyCase(name: "duplicate key", body: Data(#"{"email":"dup@example.com","email":"other@example.com","password":"password123"}"#.utf8), status: .unprocessableContent, field: "email"),
        BodyCase(name: "duplicate key spelt with an escape", body: Data(#"{"email":"dup@example.com","\u0065mail":"other@example.com","password":"password123"}"#.utf8), status: .unprocessableContent, field: "email"),
        BodyCase(name: "duplicate key in an ignored member", body: Data(#"{"email":"dup@example.com","password":"password123","extra":[{"a":1},{"a":1,"a":2}]}"#.utf8), status: .unprocessableContent, field: "extra[1].a"),
        BodyCase(name: "number beyond double", body: Data(#"{"email":"dup@example.com","password":"password123","name":1e999999}"#.utf8), status: .unprocessableContent, field: "name"),
        BodyCase(name: "integer beyond 64 bits", body: Data(#"{"email":123456789012345678901234567890,"password":"password123"}"#.utf8), status: .unprocessableContent, field: "email"),
        BodyCase(name: "lone surrogate escape", body: Data(#"{"email":"dup@example.com","password":"pass\ud800word1"}"#.utf8), status: .unprocessableContent, field: "password"),
        BodyCase(name: "NUL in a value", body: Data(#"{"email":"dup@example.com","password":"pass\u0000word1"}"#.utf8), status: .unprocessableContent, field: "password"),
        // Names that differ in code points are different names, even when canonically equivalent.
        BodyCase(name: "equivalent but different names", body: Data(#"{"email":"dup@example.com","password":"password123","\u00e9":1,"e\u0301":2}"#.utf8), status: .created),
        BodyCase(name: "top-level array", body: Data(#"[{"email":"dup@example.com","password":"password123"}]"#.utf8), status: .badRequest),
        BodyCase(name: "trailing garbage", body: Data(#"{"email":"dup@example.com","password":"password123"}x"#.utf8), status: .badRequest),
    ]

    @Test(arguments: TestDatabase.allCases, bodyCases)
    func hostileBodiesAreProblemsAndChangeNothing(_ database: TestDatabase, _ hostile: BodyCase) async throws {
        try await withApp(database) { client in
            let response = try await client.call(.post, "/api/v1/auth/register", raw: hostile.body)
            #expect(response.status == hostile.status, "\(String(decoding: response.body, as: UTF8.self))")
            guard hostile.status != .created else { return }
            #expect(response.isProblem)
            if let field = hostile.field { #expect(response.errorFields == [field]) }
            // Nothing was created: the address is still free.
            try await client.register("dup@example.com")
        }
    }

    @Test func repeatedOrUndecodableQueryParametersAreNamed() async throws {
        try await withApp(.sqlite) { client in
            let (token, _) = try await client.register(role: "instructor")
            let cases: [(String, Set<String>)] = [
                ("/api/v1/courses?limit=5&limit=10", ["limit"]),
                ("/api/v1/courses?q=a&q=b&cursor=x&cursor=y", ["q", "cursor"]),
                ("/api/v1/courses?q=%ff%fe", ["q"]),
                ("/api/v1/courses?q=caf%A9", ["q"]),
                ("/api/v1/courses?q=%zz", ["q"]),
                ("/api/v1/courses?createdBy=%", ["createdBy"]),
                ("/api/v1/courses?limit=99999999999999999999999", ["limit"]),
                ("/api/v1/courses?limit=1e2", ["limit"]),
                ("/api/v1/courses?limit=-0", ["limit"]),
                ("/api/v1/courses?limit=", ["limit"]),
                ("/api/v1/users/me/enrollments?limit=1&limit=2", ["limit"]),
            ]
            for (path, fields) in cases {
                let response = try await client.call(.get, path, token: token)
                #expect(response.status == .unprocessableContent, "\(path)")
                #expect(response.isProblem, "\(path)")
                #expect(response.errorFields == fields, "\(path)")
            }
            // A cached page never stands in for a refused query.
            #expect(try await client.call(.get, "/api/v1/courses").status == .ok)
            for path in ["/api/v1/courses?limit=", "/api/v1/courses?createdBy=", "/api/v1/courses?cursor="] {
                #expect(try await client.call(.get, path).status.code / 100 == 4, "\(path)")
            }
            // Unknown parameters are ignored, repeated or not; `+` is a space, as forms send it.
            _ = try await client.createCourse(token: token, title: "Intro Swift")
            _ = try await client.createCourse(token: token, title: "Intro Swift 2")
            let search = try await client.call(.get, "/api/v1/courses?x=1&x=2&q=intro+swift&limit=1")
            #expect(search.status == .ok)
            #expect(search.items.count == 1)
            #expect(search.headers[.link]?.contains("q=intro%20swift") == true)
            // A next-page link repeats only the known parameters (cached pages serve everyone),
            // percent-encoded down to ASCII.
            let primed = try await client.call(.get, "/api/v1/courses?utm=x&limit=1")
            let plain = try await client.call(.get, "/api/v1/courses?limit=1")
            #expect(primed.headers[.link]?.contains("utm") == false)
            #expect(primed.headers[.link] == plain.headers[.link])
            _ = try await client.createCourse(token: token, title: "Cours d'été")
            _ = try await client.createCourse(token: token, title: "Cours d'été 2")
            let accented = try await client.call(.get, "/api/v1/courses?q=%C3%A9t%C3%A9&limit=1")
            let link = try #require(accented.headers[.link])
            #expect(link.contains("q=%C3%A9t%C3%A9") && link.allSatisfy(\.isASCII), "\(link)")
        }
    }

    /// A cursor is base64 a client can forge: well-formed ones at instants no record can have are a
    /// 400 naming `cursor` from every list. `Int64.max` milliseconds used to kill the process (a
    /// trap converting to microseconds), and on PostgreSQL so did any instant past ~292,000 AD.
    @Test(arguments: TestDatabase.allCases)
    func forgedCursorsOutsideTimeAreRefusedByEveryList(_ database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (owner, _) = try await client.register(role: "instructor")
            let (student, _) = try await client.register()
            let course = try await client.createCourse(token: owner)
            let lists: [(path: String, token: String?)] = [
                ("/api/v1/courses", nil), ("/api/v1/users/me/enrollments", student), ("/api/v1/courses/\(course)/enrollments", owner),
            ]
            let id = UUID().apiString
            func cursor(_ milliseconds: String) -> String { "v1." + Base64URL.encode("\(milliseconds).\(id)".utf8) }
            for list in lists {
                for milliseconds in ["253402300800000", "9999999999999999", "\(Int64.max)"] {
                    let response = try await client.call(.get, "\(list.path)?cursor=\(cursor(milliseconds))", token: list.token)
                    #expect(response.status == .badRequest, "\(list.path) \(milliseconds)")
                    #expect(response.isProblem && response.errorFields == ["cursor"], "\(list.path) \(milliseconds)")
                }
                // The last instant of year 9999 is still a position in the list.
                let last = try await client.call(.get, "\(list.path)?cursor=\(cursor("253402300799999"))", token: list.token)
                #expect(last.status == .ok, "\(list.path)")
            }
        }
    }

    @Test func oversizedTargetsAndHeadersAreRefused() async throws {
        try await withApp(.sqlite) { client in
            let longTarget = try await client.call(.get, "/api/v1/courses?q=" + String(repeating: "a", count: 9000))
            #expect(longTarget.status == .uriTooLong)
            #expect(longTarget.isProblem)

            let longHeader = try await client.call(.get, "/health", headers: [HTTPField.Name("X-Long")!: String(repeating: "a", count: 20_000)])
            #expect(longHeader.status == .requestHeaderFieldsTooLarge)
            #expect(longHeader.isProblem)

            var many = HTTPFields()
            for index in 0..<150 { many.append(HTTPField(name: HTTPField.Name("X-Field-\(index)")!, value: "v")) }
            let manyHeaders = try await client.call(.get, "/health", headers: many)
            #expect(manyHeaders.status == .requestHeaderFieldsTooLarge)

            // Just under the limits is fine.
            let fine = try await client.call(.get, "/api/v1/courses?x=" + String(repeating: "a", count: 7000), headers: [HTTPField.Name("X-Long")!: String(repeating: "a", count: 10_000)])
            #expect(fine.status == .ok)
        }
    }

    @Test func aKnownPathWithAnotherMethodIs405WithAllow() async throws {
        try await withApp(.sqlite) { client in
            let cases: [(HTTPRequest.Method, String, String)] = [
                (.put, "/api/v1/courses", "GET, HEAD, POST"),
                (.delete, "/health", "GET, HEAD"),
                (.post, "/api/v1/courses/0191e0a6-0000-7000-8000-000000000000", "DELETE, GET, HEAD, PATCH, PUT"),
                (.patch, "/api/v1/users/me", "GET, HEAD, PUT"),
                (.get, "/api/v1/auth/login", "POST"),
            ]
            for (method, path, allow) in cases {
                let response = try await client.call(method, path)
                #expect(response.status == .methodNotAllowed, "\(method) \(path)")
                #expect(response.headers[.allow] == allow, "\(method) \(path)")
                #expect(response.isProblem)
            }
            // HEAD is answered wherever GET is: the same status and headers, no body.
            let head = try await client.call(.head, "/api/v1/courses")
            #expect(head.status == .ok && head.body.isEmpty && head.headers[.eTag] != nil)
            // A route's own 404 (no such course) and an unknown path stay 404.
            #expect(try await client.call(.get, "/api/v1/courses/0191e0a6-0000-7000-8000-000000000000").status == .notFound)
            #expect(try await client.call(.post, "/api/v1/nothing").status == .notFound)
        }
    }

    /// Beyond the limits above, NIO's parser refuses the head itself: a bare 400, connection closed,
    /// and the server goes on serving others.
    @Test(.timeLimit(.minutes(1)))
    func headsBeyondTheParserLimitAreRefusedOverASocket() async throws {
        try await withApp(.sqlite, framework: .live) { client in
            let port = try #require(client.port)
            // Heads over the parser's limit: the server answers 400 and closes with bytes unread,
            // so the client may see the connection reset before it reads the answer.
            let oversized: [String] = [
                "GET /api/v1/courses?q=\(String(repeating: "a", count: 200_000)) HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /health HTTP/1.1\r\nHost: x\r\nX-Long: \(String(repeating: "a", count: 200_000))\r\n\r\n",
            ]
            for request in oversized {
                let answer = try await RawHTTP.exchange(Data(request.utf8), port: port)
                #expect(answer.isEmpty || answer.hasPrefix("HTTP/1.1 4"), "\(request.prefix(40)) → \(answer.prefix(60))")
            }
            let malformed: [String] = [
                "GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\u{01}b\r\n\r\n",
                "BREW /health HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
            ]
            for request in malformed {
                let answer = try await RawHTTP.exchange(Data(request.utf8), port: port)
                #expect(answer.hasPrefix("HTTP/1.1 4"), "\(request.prefix(40)) → \(answer.prefix(60))")
            }
            #expect(try await client.call(.get, "/health").status == .ok)
        }
    }

    /// A client cannot hold a connection by sending nothing, or half a request head, or nothing
    /// more after an answer; a request that takes longer than the timeout is still answered. Each
    /// exchange below would wait for ever (and the time limit fail the test) if the server kept
    /// the connection open.
    @Test(.timeLimit(.minutes(1)))
    func idleConnectionsAreClosed() async throws {
        try await withApp(.sqlite, framework: .live, configure: {
            // 2 s, not less: on a starved machine (two busy loops beside the suite) a loop that
            // woke late ran a 0.5 s timeout before reading a request that had long arrived.
            $0.httpIdleTimeoutSeconds = 2
            $0.bcryptCost = 15
        }) { client in
            let port = try #require(client.port)
            #expect(try await RawHTTP.exchange(Data(), port: port).isEmpty)
            #expect(try await RawHTTP.exchange(Data("GET /health HTTP/1.1\r\nHost: x\r\n".utf8), port: port).isEmpty)
            let answered = try await RawHTTP.exchange(Data("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".utf8), port: port)
            #expect(answered.hasPrefix("HTTP/1.1 200"), "\(answered.prefix(60))")
            // bcrypt at cost 15 takes about twice the idle timeout (3.9 s in a debug build here).
            // (The test client's own connection is closed by the timeout too, so this goes over
            // a socket of its own.)
            let body = #"{"email":"slow@example.com","password":"password123"}"#
            let started = ContinuousClock.now
            let registered = try await RawHTTP.exchange(Data((
                "POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            ).utf8), port: port)
            #expect(registered.hasPrefix("HTTP/1.1 201"), "\(registered.prefix(60))")
            #expect(ContinuousClock.now - started > .seconds(2), "the slow request should outlast the idle timeout")
        }
    }
}
