import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing
@testable import OpenCourse

@Suite("Catalog cache and HTTP caching")
struct CachingTests {
    @Test func concurrentMissesShareOneLoad() async throws {
        let cache = CatalogCache(capacity: 100, timeToLive: .seconds(60))
        let loads = LoadCounter()
        let values = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    let value = try await cache.value(for: .page("first")) {
                        loads.increment()
                        try await Task.sleep(for: .milliseconds(50))
                        return CachedRepresentation(body: ByteBuffer(string: "page one"))
                    }
                    return value.body.getString(at: 0, length: value.body.readableBytes) ?? ""
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(loads.value == 1)
        #expect(values.allSatisfy { $0 == "page one" })
    }

    @Test func entriesExpireAreBoundedAndDropOnChange() async throws {
        let loads = LoadCounter()
        let load: @Sendable () async throws -> CachedRepresentation = {
            loads.increment()
            return CachedRepresentation(body: ByteBuffer(string: "x"))
        }
        let longLived = CatalogCache(capacity: 10, timeToLive: .seconds(60))
        _ = try await longLived.value(for: .page("a"), load: load)
        _ = try await longLived.value(for: .page("a"), load: load)
        #expect(loads.value == 1)
        // Expiry only needs more time to pass than the TTL, which a busy machine cannot prevent.
        let shortLived = CatalogCache(capacity: 10, timeToLive: .milliseconds(100))
        _ = try await shortLived.value(for: .page("a"), load: load)
        try await Task.sleep(for: .milliseconds(300))
        _ = try await shortLived.value(for: .page("a"), load: load)
        #expect(loads.value == 3)

        let small = CatalogCache(capacity: 10, timeToLive: .seconds(60))
        for index in 0..<25 { _ = try await small.value(for: .page("\(index)"), load: load) }
        #expect(small.count <= 10)

        let course = UUID(), other = UUID()
        let cache = CatalogCache(capacity: 10, timeToLive: .seconds(60))
        _ = try await cache.value(for: .course(course), load: load)
        _ = try await cache.value(for: .course(other), load: load)
        _ = try await cache.value(for: .page("p"), load: load)
        #expect(cache.count == 3)
        cache.courseChanged(course)
        #expect(cache.count == 1)
    }

    /// Distinct searches and cursors are pages of their own, up to 100 courses each: the cache
    /// keeps its bytes under the bound by dropping the least recently used, and does not keep a
    /// response too large for it at all.
    @Test func entriesAreBoundedInBytes() async throws {
        let loads = LoadCounter()
        func load(_ size: Int) -> @Sendable () async throws -> CachedRepresentation {
            { loads.increment(); return CachedRepresentation(body: ByteBuffer(repeating: UInt8(ascii: "x"), count: size)) }
        }
        let cache = CatalogCache(capacity: 10_000, maxBytes: 20_000, timeToLive: .seconds(60))
        _ = try await cache.value(for: .page("hot"), load: load(1_000))
        for index in 0..<100 {
            _ = try await cache.value(for: .page("search \(index)"), load: load(1_000))
            _ = try await cache.value(for: .page("hot"), load: load(1_000))
            #expect(cache.bytes <= 20_000)
        }
        #expect(loads.value == 101)
        #expect(cache.count >= 10 && cache.count < 20)
        _ = try await cache.value(for: .page("search 0"), load: load(1_000))
        #expect(loads.value == 102)

        // Over an eighth of the bound: served each time, never stored.
        let before = cache.count
        for _ in 0..<2 { #expect(try await cache.value(for: .page("huge"), load: load(3_000)).body.readableBytes == 3_000) }
        #expect(loads.value == 104 && cache.count == before)

        // Bulk removals keep the count of bytes true.
        cache.courseChanged(UUID())
        #expect(cache.bytes == 0 && cache.count == 0)
        _ = try await cache.value(for: .course(UUID()), load: load(500))
        #expect(cache.bytes == 500 + 16 + 128)
    }

    /// Expired entries are dropped as time passes, not only when the cache is full, so its memory
    /// follows what is still served.
    @Test func expiredEntriesAreSweptWithoutNewTraffic() async throws {
        let cache = CatalogCache(capacity: 100, timeToLive: .milliseconds(100))
        let fresh = CatalogCache(capacity: 100, timeToLive: .seconds(60))
        for cacheUnderTest in [cache, fresh] {
            for index in 0..<20 {
                _ = try await cacheUnderTest.value(for: index % 4 == 0 ? .page("\(index)") : .course(UUID())) {
                    CachedRepresentation(body: ByteBuffer(string: "entry \(index)"))
                }
            }
        }
        #expect(cache.count == 20)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await cache.run() }
            group.addTask { try await fresh.run() }
            // A sweep every 0.5 s (the least interval): wait for it rather than guess (at most 20 s).
            for _ in 0..<200 where cache.count > 0 {
                try await Task.sleep(for: .milliseconds(100))
            }
            group.cancelAll()
        }
        #expect(cache.count == 0)
        #expect(fresh.count == 20)
    }

    @Test func errorsAreNotCached() async throws {
        struct Failure: Error {}
        let cache = CatalogCache(capacity: 10, timeToLive: .seconds(60))
        await #expect(throws: Failure.self) {
            _ = try await cache.value(for: .page("e")) { throw Failure() }
        }
        let value = try await cache.value(for: .page("e")) { CachedRepresentation(body: ByteBuffer(string: "ok")) }
        #expect(value.body.readableBytes == 2)
    }

    @Test(arguments: TestDatabase.allCases)
    func etagsAndConditionalRequests(database: TestDatabase) async throws {
        try await withApp(database) { client in
            let (owner, _) = try await client.register(role: "instructor")
            let id = try await client.createCourse(token: owner, title: "Cached")
            for path in ["/api/v1/courses/\(id)", "/api/v1/courses?limit=5"] {
                let first = try await client.call(.get, path)
                #expect(first.status == .ok)
                let etag = try #require(first.headers[.eTag])
                #expect(etag.hasPrefix("\"") && etag.hasSuffix("\"") && !etag.hasPrefix("W/"))
                #expect(first.headers[.cacheControl] == "public, max-age=10, stale-while-revalidate=30")

                let again = try await client.call(.get, path, headers: [.ifNoneMatch: etag])
                #expect(again.status == .notModified)
                #expect(again.body.isEmpty)
                #expect(again.headers[.eTag] == etag)
                #expect(try await client.call(.get, path, headers: [.ifNoneMatch: "\"other\", W/\(etag)"]).status == .notModified)
                #expect(try await client.call(.get, path, headers: [.ifNoneMatch: "\"stale\""]).status == .ok)

                #expect(try await client.call(.patch, "/api/v1/courses/\(id)", json: ["title": "Cached \(path.count)"], token: owner).status == .ok)
                let changed = try await client.call(.get, path, headers: [.ifNoneMatch: etag])
                #expect(changed.status == .ok)
                #expect(changed.headers[.eTag] != etag)
            }
        }
    }

    @Test func personalResponsesAreNeverStored() async throws {
        try await withApp(.sqlite) { client in
            let (owner, _) = try await client.register(role: "instructor")
            let course = try await client.createCourse(token: owner)
            let login = try await client.call(.post, "/api/v1/auth/login", json: ["email": "nobody@example.com", "password": "password123"])
            let register = try await client.call(.post, "/api/v1/auth/register", json: ["email": "p@example.com", "password": "password123"])
            let token = try #require(register.string("accessToken"))
            let responses = [
                register, login,
                try await client.call(.get, "/api/v1/users/me", token: token),
                try await client.call(.post, "/api/v1/courses/\(course)/enroll", token: token),
                try await client.call(.get, "/api/v1/users/me/enrollments", token: token),
                try await client.call(.get, "/api/v1/courses/\(course)/enrollments", token: owner),
                try await client.call(.get, "/api/v1/courses/\(UUID())"),
            ]
            for response in responses {
                #expect(response.headers[.cacheControl] == "private, no-store", "\(response.status)")
                #expect(response.headers[.eTag] == nil)
            }
        }
    }

    @Test func changesThroughOneInstanceReachTheOtherWithinASecond() async throws {
        let location = try await TestDatabase.postgres.makeLocation()
        let configuration = testConfiguration(location)
        let first = try await buildApplication(configuration, logger: testLogger)
        let second = try await buildApplication(configuration, logger: testLogger)
        try await first.test(.router) { a in
            try await second.test(.router) { b in
                let (owner, _) = try await a.register(role: "instructor")
                let id = try await a.createCourse(token: owner, title: "Version 1")
                // Warm B's cache with the course and the first page.
                #expect(try await b.call(.get, "/api/v1/courses/\(id)").string("title") == "Version 1")
                #expect(try await b.call(.get, "/api/v1/courses?limit=5").items.count == 1)

                #expect(try await a.call(.put, "/api/v1/courses/\(id)", json: ["title": "Version 2"], token: owner).status == .ok)
                let second = try await a.createCourse(token: owner, title: "Another")
                try await Self.eventually(within: .seconds(1)) {
                    try await b.call(.get, "/api/v1/courses/\(id)").string("title") == "Version 2"
                }
                try await Self.eventually(within: .seconds(1)) {
                    try await b.call(.get, "/api/v1/courses?limit=5").items.compactMap { $0["id"] as? String } == [second, id]
                }
                #expect(try await a.call(.delete, "/api/v1/courses/\(id)", token: owner).status == .noContent)
                try await Self.eventually(within: .seconds(1)) {
                    try await b.call(.get, "/api/v1/courses/\(id)").status == .notFound
                }
            }
        }
    }

    /// While PostgreSQL cannot be reached the listener retries every second, but warns once.
    @Test func listenerWarnsOnceWhileThePostgreSQLServerIsDown() async throws {
        let log = LogCapture()
        let listener = CatalogChangeListener(
            configuration: .init(host: "127.0.0.1", port: ServerProcess.closedPort, username: "nobody", password: nil, database: "none", tls: .disable),
            cache: CatalogCache(capacity: 10, timeToLive: .seconds(60)), logger: log.logger()
        )
        let message = "catalog change listener lost its connection; retrying every second"
        let task = Task { try await listener.run() }
        try await Self.eventually(within: .seconds(10)) { !log.objects(message: message).isEmpty }
        // Refused at once: two more failed attempts and more in 2.5 s, and no second warning.
        try await Task.sleep(for: .milliseconds(2_500))
        task.cancel()
        _ = await task.result
        let warnings = log.objects(message: message)
        #expect(warnings.count == 1)
        #expect(warnings.first?["failures"] == "1")
        #expect(warnings.first?["error"]?.contains("connectionError") == true, "\(warnings)")
    }

    /// Polls `condition` until it holds, failing the test when `within` passes first.
    static func eventually(within limit: Duration, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("condition did not hold within \(limit)")
    }
}

final class LoadCounter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
