import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing
@testable import OpenCourse

/// `FastPathResponder` answers `/health` and cached catalog reads in front of Hummingbird. Only a
/// real socket reaches it (`.live`); `.router` tests see Hummingbird's path alone.
@Suite("HTTP fast path")
struct FastPathTests {
    struct Probe: CustomStringConvertible {
        var method: HTTPRequest.Method = .get
        var path: String
        var headers: HTTPFields = [:]
        /// Whether the fast path should answer it once the cache holds what it reads.
        var fast: Bool

        var description: String { "\(method) \(path) \(headers)" }
    }

    /// Two instances on one database, one with the fast path and one without, get the same
    /// requests twice (the first fills the cache); the second answers must be the same bytes
    /// apart from `Date` and generated request ids, and the fast path must have given exactly
    /// the answers it should. Once with CORS origins and HSTS, once without.
    @Test(arguments: [true, false])
    func answersAreHummingbirdsOwn(browserFacing: Bool) async throws {
        var configuration = testConfiguration(try await TestDatabase.postgres.makeLocation())
        // The second origin is NFC; the probes also send it in NFD, which Swift's strings take as equal.
        configuration.corsAllowedOrigins = browserFacing ? ["https://app.example.com", "https://caf\u{E9}.example.com"] : []
        configuration.hstsEnabled = browserFacing
        configuration.rateLimitRPS = 1000
        configuration.rateLimitBurst = 1000
        configuration.logLevel = .info
        let (fastLog, plainLog) = (LogCapture(), LogCapture())
        let fast = try await buildApplication(configuration, logger: fastLog.logger())
        configuration.httpFastPath = false
        let plain = try await buildApplication(configuration, logger: plainLog.logger())
        try await fast.test(.live) { a in
            try await plain.test(.live) { b in
                let (owner, _) = try await a.register(role: "instructor")
                let first = try await a.createCourse(token: owner, title: "Alpha course", description: "Café au lait")
                _ = try await a.createCourse(token: owner, title: "Beta course")
                // Both fill their caches alike; only the writes above went through `a` alone.
                let etags = try await [a, b].asyncMap { try await $0.call(.get, "/api/v1/courses/\(first)").headers[.eTag] }
                let etag = try #require(etags[0])
                let course = "/api/v1/courses/\(first)"
                let probes = [
                    Probe(path: "/health", fast: true),
                    Probe(path: "/health?probe=1", fast: true),
                    Probe(path: "/health", headers: [.requestID: "req-1.a_b"], fast: true),
                    Probe(path: "/health", headers: [.requestID: "not acceptable!"], fast: true),
                    Probe(path: "/api/v1/courses", fast: true),
                    Probe(path: "/api/v1/courses?limit=1", fast: true),
                    Probe(path: "/api/v1/courses?limit=1&q=alpha&unknown=x", fast: true),
                    Probe(path: "/api/v1/courses?q=caf%C3%A9+au", fast: true),
                    Probe(path: course, fast: true),
                    Probe(path: course.uppercased().replacingOccurrences(of: "/API/V1/COURSES/", with: "/api/v1/courses/"), fast: true),
                    Probe(path: course + "?x=1", fast: true),
                    Probe(path: course, headers: [.ifNoneMatch: etag], fast: true),
                    Probe(path: course, headers: [.ifNoneMatch: "W/\(etag), \"other\""], fast: true),
                    Probe(path: course, headers: [.ifNoneMatch: "\"other\""], fast: true),
                    Probe(path: course, headers: [.origin: "https://app.example.com"], fast: true),
                    Probe(path: course, headers: [.origin: "https://evil.example.com"], fast: true),
                    Probe(path: course, headers: [.xForwardedFor: "203.0.113.9"], fast: true),
                    Probe(method: .head, path: "/health", fast: false),
                    Probe(method: .head, path: course, fast: false),
                    Probe(path: "/ready", fast: false),
                    Probe(path: "/api/v1/courses?limit=0", fast: false),
                    Probe(path: "/api/v1/courses?limit=1&limit=2", fast: false),
                    Probe(path: "/api/v1/courses?q=%ff", fast: false),
                    Probe(path: "/api/v1/courses/", fast: false),
                    Probe(path: "/api/v1/courses/not-a-uuid", fast: false),
                    Probe(path: "/api/v1/courses/\(UUID().uuidString.lowercased())", fast: false),
                    Probe(path: "/api/v1/courses/%61" + first.dropFirst(), fast: false),
                    Probe(path: "/api/v1/users/me", fast: false),
                ]
                for probe in probes {
                    let answers = try await [a, b].asyncMap { client in
                        _ = try await client.call(probe.method, probe.path, headers: probe.headers)
                        let before = try await Self.fastAnswers(client)
                        let answer = try await client.call(probe.method, probe.path, headers: probe.headers)
                        return (answer, try await Self.fastAnswers(client) - before)
                    }
                    let (fastAnswer, fastCount) = answers[0]
                    let (plainAnswer, plainCount) = answers[1]
                    #expect(fastCount == (probe.fast ? 1 : 0), "\(probe)")
                    #expect(plainCount == 0, "\(probe)")
                    #expect(fastAnswer.status == plainAnswer.status, "\(probe)")
                    #expect(Self.comparable(fastAnswer, probe).map(\.utf8.array) == Self.comparable(plainAnswer, probe).map(\.utf8.array), "\(probe)")
                    #expect(fastAnswer.body == plainAnswer.body, "\(probe)")
                }

                // Requests no client library sends, each on a connection of its own, then
                // `/metrics` on the same connection to end it.
                let tooManyFields = (0..<101).map { "X-Field-\($0): x\r\n" }.joined()
                let raw: [(request: String, fast: Bool)] = [
                    ("GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", true),
                    ("GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\nx-request-id: b\r\n\r\n", true),
                    ("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: close\r\n\r\n", true),
                    ("GET http://localhost/health HTTP/1.1\r\nHost: localhost\r\n\r\n", false),
                    ("GET /health HTTP/1.0\r\nHost: x\r\n\r\n", false),
                    ("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", false),
                    ("GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false),
                    ("GET /health/ HTTP/1.1\r\nHost: x\r\n\r\n", false),
                    ("GET //health HTTP/1.1\r\nHost: x\r\n\r\n", false),
                    ("GET \(course)/ HTTP/1.1\r\nHost: x\r\n\r\n", false),
                    ("GET /health?\(String(repeating: "a", count: 8200)) HTTP/1.1\r\nHost: x\r\n\r\n", false),
                    ("GET /health HTTP/1.1\r\nHost: x\r\n\(tooManyFields)\r\n", false),
                    ("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false),
                    ("GET /health HTTP/1.1\r\nHost: x\r\nconnection: close\r\n\r\n", false),
                    // NIO's parser keeps trailing whitespace in values; the conversion drops it.
                    ("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close \t\r\n\r\n", false),
                    ("GET /health HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com \r\n\r\n", true),
                    ("GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: r1 \r\n\r\n", true),
                    ("GET \(course) HTTP/1.1\r\nHost: x\r\nOrigin: https://caf\u{E9}.example.com\r\n\r\n", true),
                    // CORS echoes the client's bytes, which the fast path leaves to Hummingbird.
                    ("GET \(course) HTTP/1.1\r\nHost: x\r\nOrigin: https://cafe\u{301}.example.com\r\n\r\n", !browserFacing),
                ]
                let end = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                for (request, expectFast) in raw {
                    let answers = try await [a, b].asyncMap { client in
                        let before = try await Self.fastAnswers(client)
                        let text = try await RawHTTP.exchange(Data((request + end).utf8), port: try #require(client.port))
                        // A request id the client sent must come back as it is.
                        let masked = Self.firstResponse(text, maskingRequestID: !request.contains("X-Request-Id: r1 "))
                        return (masked, try await Self.fastAnswers(client) - before)
                    }
                    let probe = String(request.prefix(60))
                    #expect(answers[0].1 == (expectFast ? 1 : 0), "\(probe)")
                    #expect(answers[1].1 == 0, "\(probe)")
                    // Bytes, not strings: Swift takes Unicode-equivalent strings as equal.
                    #expect(!answers[0].0.isEmpty && answers[0].0.map(\.utf8.array) == answers[1].0.map(\.utf8.array), "\(probe)")
                }

                // The same metrics and access-log lines for the reads (the writes went to `a`).
                let metrics = try await [a, b].asyncMap { client in
                    String(decoding: try await client.call(.get, "/metrics").body, as: UTF8.self)
                        .split(separator: "\n").filter { $0.hasPrefix("http_requests_total{") && !$0.contains("method=\"POST\"") }.sorted()
                }
                #expect(!metrics[0].isEmpty && metrics[0] == metrics[1], "\(metrics[0]) against \(metrics[1])")
                let logs = [fastLog, plainLog].map { log in
                    log.objects(message: "request").filter { $0["method"] != "POST" }.map { line in
                        line.filter { !["ts", "duration_ms", "request_id"].contains($0.key) }
                    }
                }
                #expect(logs[0].count > 40 && logs[0] == logs[1], "\(logs[0].count) against \(logs[1].count) lines")
                #expect(fastLog.objects(message: "request").allSatisfy { $0["request_id"]?.isEmpty == false })
            }
        }
    }

    /// Hummingbird answers a connection's requests in order. A request that arrives while one
    /// before it is still in Hummingbird's hands (a slow sign-in here) must not be answered first.
    @Test(.timeLimit(.minutes(1)))
    func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withApp(.sqlite, framework: .live, configure: { $0.bcryptCost = 10 }) { client in
            let port = try #require(client.port)
            let (owner, _) = try await client.register("pipeline@example.com", role: "instructor")
            let id = try await client.createCourse(token: owner)
            #expect(try await client.call(.get, "/api/v1/courses/\(id)").status == .ok)
            let before = try await Self.fastAnswers(client)

            let login = #"{"email":"pipeline@example.com","password":"password123"}"#
            let requests = [
                "GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: r1\r\n\r\n",
                "GET /api/v1/courses/\(id) HTTP/1.1\r\nHost: x\r\nX-Request-Id: r2\r\n\r\n",
                "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nX-Request-Id: r3\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(login.utf8.count)\r\n\r\n\(login)",
                "GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: r4\r\n\r\n",
                "GET /api/v1/courses/\(id) HTTP/1.1\r\nHost: x\r\nX-Request-Id: r5\r\n\r\n",
                "GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: r6\r\nConnection: close\r\n\r\n",
            ]
            let answer = try await RawHTTP.exchange(Data(requests.joined().utf8), port: port)
            let statuses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.components(separatedBy: "\r\n")[0] }
            #expect(statuses == Array(repeating: "200 OK", count: 6), "\(answer)")
            let order = (1...6).map { answer.range(of: "X-Request-Id: r\($0)\r\n")?.lowerBound }
            #expect(order.allSatisfy { $0 != nil }, "\(answer)")
            #expect(order.compactMap { $0 } == order.compactMap { $0 }.sorted(), "\(answer)")
            // r1 and r2 at least; r4 and r5 came in while the sign-in was running.
            #expect(try await Self.fastAnswers(client) - before >= 2)
        }
    }

    /// NIO's encoder pairs each response with its request's method to leave the body out of an
    /// answer to HEAD. Fast answers go through it too, so a HEAD that Hummingbird answers with an
    /// error after them still gets no body (else the next answer would be read as its body).
    @Test(.timeLimit(.minutes(1)))
    func headAnswersAfterFastAnswersHaveNoBody() async throws {
        try await withApp(.sqlite, framework: .live) { client in
            let port = try #require(client.port)
            let before = try await Self.fastAnswers(port: port)
            let requests = [
                "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                "HEAD /api/v1/nothing-here HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ]
            let answer = try await RawHTTP.exchange(Data(requests.joined().utf8), port: port)
            let heads = answer.components(separatedBy: "HTTP/1.1 ").dropFirst()
            #expect(heads.map { $0.components(separatedBy: "\r\n")[0] } == ["200 OK", "200 OK", "404 Not Found", "200 OK"], "\(answer)")
            // The 404's head ends the text before the next status line: no body between them.
            let notFound = try #require(heads.dropFirst(2).first)
            #expect(notFound.hasSuffix("\r\n\r\n"), "\(answer)")
            #expect(notFound.contains("Content-Length: "), "\(answer)")
            #expect(try await Self.fastAnswers(port: port) - before == 2)
        }
    }

    /// Hummingbird's connection-state handler does not see the requests the fast path answers, so
    /// the fast path keeps the idle timeout: a connection busy with its answers stays open past the
    /// timeout, and closes once idle for it.
    @Test(.timeLimit(.minutes(1)))
    func busyConnectionsStayOpenAndIdleOnesClose() async throws {
        try await withApp(.sqlite, framework: .live, configure: { $0.httpIdleTimeoutSeconds = 2 }) { client in
            let port = try #require(client.port)
            // Over sockets of their own: the test client's connection goes idle meanwhile.
            let before = try await Self.fastAnswers(port: port)
            let requests = 9
            let (answers, openFor, closedAfterIdle) = try await RawHTTP.connect(port: port).executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var received = ""
                let started = ContinuousClock.now
                for sent in 1...requests {
                    try await outbound.write(ByteBuffer(string: "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
                    while received.components(separatedBy: "HTTP/1.1 200 OK").count - 1 < sent {
                        guard let chunk = try await iterator.next() else { break }
                        received += String(buffer: chunk)
                    }
                    if sent < requests { try await Task.sleep(for: .milliseconds(500)) }
                }
                let openFor = ContinuousClock.now - started
                let idleSince = ContinuousClock.now
                while let chunk = try await iterator.next() { received += String(buffer: chunk) }
                return (received.components(separatedBy: "HTTP/1.1 200 OK").count - 1, openFor, ContinuousClock.now - idleSince)
            }
            #expect(answers == requests)
            #expect(openFor >= .seconds(4), "twice the idle timeout")
            #expect(closedAfterIdle >= .seconds(1.5))
            #expect(try await Self.fastAnswers(port: port) - before == requests)
        }
    }

    /// Fast answers take from the client's token bucket; once it is empty Hummingbird answers
    /// 429 as it would anyway. `/health` stays exempt.
    @Test func rateLimitsCountFastAnswers() async throws {
        try await withApp(.sqlite, framework: .live, configure: {
            $0.rateLimitRPS = 0.01
            $0.rateLimitBurst = 5
        }) { client in
            let (owner, _) = try await client.register(role: "instructor")
            let id = try await client.createCourse(token: owner)
            let before = try await Self.fastAnswers(client)
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<5 {
                statuses.append(try await client.call(.get, "/api/v1/courses/\(id)").status)
            }
            #expect(statuses == [.ok, .ok, .ok, .tooManyRequests, .tooManyRequests])
            #expect(try await Self.fastAnswers(client) - before == 2)
            #expect(try await client.call(.get, "/health").status == .ok)
            #expect(try await Self.fastAnswers(client) - before == 3)
        }
    }

    /// A change reaches the fast path's answers at once: it reads the same cache.
    @Test func aChangeIsServedAtOnce() async throws {
        try await withApp(.sqlite, framework: .live) { client in
            let (owner, _) = try await client.register(role: "instructor")
            let id = try await client.createCourse(token: owner, title: "Old title")
            let start = try await Self.fastAnswers(client)
            for _ in 0..<2 {
                #expect(try await client.call(.get, "/api/v1/courses/\(id)").string("title") == "Old title")
                #expect(try await client.call(.get, "/api/v1/courses").items.first?["title"] as? String == "Old title")
            }
            // The first reads filled the cache, the second were answered from it on the fast path.
            let beforeChange = try await Self.fastAnswers(client)
            #expect(beforeChange - start == 2)
            #expect(try await client.call(.put, "/api/v1/courses/\(id)", json: ["title": "New title"], token: owner).status == .ok)
            for _ in 0..<2 {
                #expect(try await client.call(.get, "/api/v1/courses/\(id)").string("title") == "New title")
                #expect(try await client.call(.get, "/api/v1/courses").items.first?["title"] as? String == "New title")
            }
            #expect(try await Self.fastAnswers(client) - beforeChange == 2)
        }
    }

    @Test func dateFieldIsRFC9110() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(1_795_741_200) == "Fri, 27 Nov 2026 01:00:00 GMT")
    }

    /// Each thread keeps its own copy: on every thread it is the current second's, and it moves on.
    @Test func dateFieldIsCurrentOnEveryThread() async throws {
        @Sendable func sample() -> (before: String, value: String, after: String) {
            let before = HTTPDate.format(time(nil))
            let value = HTTPDate.now
            return (before, value, HTTPDate.format(time(nil)))
        }
        let samples = await withTaskGroup { group in
            for _ in 0..<8 {
                group.addTask { await Task.detached { sample() }.value }
            }
            return await group.reduce(into: [sample()]) { $0.append($1) }
        }
        for (before, value, after) in samples {
            #expect(value == before || value == after)
        }
        let first = HTTPDate.now
        try await Task.sleep(for: .milliseconds(1100))
        let later = sample()
        #expect(later.value != first)
        #expect(later.value == later.before || later.value == later.after)
    }

    /// What the fast path has answered so far, from `/metrics` (which it never answers).
    static func fastAnswers(_ client: some TestClientProtocol) async throws -> Int {
        let text = String(decoding: try await client.call(.get, "/metrics").body, as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix("opencourse_http_fast_path_responses_total ") }
        return try #require(line.flatMap { $0.split(separator: " ").last.flatMap { Int($0) } })
    }

    /// `fastAnswers`, asked on a connection of its own.
    static func fastAnswers(port: Int) async throws -> Int {
        let text = try await RawHTTP.exchange(Data("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8), port: port)
        let line = text.split(separator: "\n").first { $0.hasPrefix("opencourse_http_fast_path_responses_total ") }
        return try #require(line.flatMap { $0.split(separator: " ").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } })
    }

    /// The status line, fields and body of the first response in `text`, with the values that
    /// differ between any two answers (`Date`, a generated request id) replaced.
    static func firstResponse(_ text: String, maskingRequestID: Bool = true) -> [String] {
        guard let headEnd = text.range(of: "\r\n\r\n") else { return [] }
        let lines = text[..<headEnd.lowerBound].components(separatedBy: "\r\n").map { line in
            line.hasPrefix("Date: ") ? "Date: (present)"
                : maskingRequestID && line.hasPrefix("X-Request-Id: ") ? "X-Request-Id: (generated)" : line
        }
        let length = lines.first { $0.hasPrefix("Content-Length: ") }.flatMap { Int($0.dropFirst(16)) } ?? 0
        return lines + [String(text[headEnd.upperBound...].utf8.prefix(length)) ?? ""]
    }

    /// The fields in order, with the values that differ between any two answers replaced.
    static func comparable(_ response: APIResponse, _ probe: Probe) -> [String] {
        response.headers.map { field in
            switch field.name {
            case .date: return "Date: (present)"
            case .requestID where probe.headers[.requestID].flatMap(RequestObservabilityMiddleware.acceptable) == nil:
                return "X-Request-Id: (generated)"
            default: return "\(field.name): \(field.value)"
            }
        }
    }
}

extension String.UTF8View {
    var array: [UInt8] { Array(self) }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
