import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
@testable import OpenCourse

@Suite("Rate limits")
struct RateLimitTests {
    private static func login(_ client: any TestClientProtocol, _ email: String, _ password: String, from address: String? = nil) async throws -> APIResponse {
        var headers: HTTPFields = [:]
        if let address { headers[.xForwardedFor] = address }
        return try await client.call(.post, "/api/v1/auth/login", json: ["email": email, "password": password], headers: headers)
    }

    @Test(arguments: TestDatabase.allCases)
    func failedLoginsLockTheAccountWhateverThePassword(database: TestDatabase) async throws {
        try await withApp(database, configure: { $0.loginMaxFailures = 3 }) { client in
            try await client.register("locked@example.com")
            try await client.register("other@example.com")
            for _ in 0..<3 {
                #expect(try await Self.login(client, "locked@example.com", "wrong-password").status == .unauthorized)
            }
            let locked = try await Self.login(client, "LOCKED@example.com", "password123")
            #expect(locked.status == .tooManyRequests)
            #expect(locked.isProblem)
            let retryAfter = try #require(locked.headers[.retryAfter].flatMap(Int.init))
            #expect(retryAfter > 0 && retryAfter <= 900)
            #expect(locked.headers[.rateLimitLimit] == "3")
            #expect(locked.headers[.rateLimitRemaining] == "0")
            #expect(locked.headers[.rateLimitReset] == String(retryAfter))
        }
    }

    @Test func aSuccessResetsTheAccountsFailures() async throws {
        try await withApp(.sqlite, framework: .live, configure: {
            $0.loginMaxFailures = 3
            $0.trustedProxies = [try #require(IPRange("127.0.0.1"))]
        }) { client in
            try await client.register("reset@example.com")
            // From different addresses so only the account's count matters.
            for round in 0..<3 {
                #expect(try await Self.login(client, "reset@example.com", "wrong-password", from: "203.0.113.\(round * 2 + 1)").status == .unauthorized)
                #expect(try await Self.login(client, "reset@example.com", "wrong-password", from: "203.0.113.\(round * 2 + 2)").status == .unauthorized)
                #expect(try await Self.login(client, "reset@example.com", "password123", from: "203.0.113.100").status == .ok)
            }
        }
    }

    @Test func failuresAreCountedPerClientAddressBehindTrustedProxies() async throws {
        try await withApp(.sqlite, framework: .live, configure: {
            $0.loginMaxFailures = 3
            $0.trustedProxies = [try #require(IPRange("127.0.0.0/8"))]
        }) { client in
            for index in 0..<3 {
                try await client.register("spray-\(index)@example.com")
                #expect(try await Self.login(client, "spray-\(index)@example.com", "wrong-password", from: "198.51.100.7").status == .unauthorized)
            }
            // The address has used up its failures: a fourth account is refused from it...
            try await client.register("spray-3@example.com")
            #expect(try await Self.login(client, "spray-3@example.com", "password123", from: "198.51.100.7").status == .tooManyRequests)
            // ...a client that claims another address in front of it is still that address...
            #expect(try await Self.login(client, "spray-3@example.com", "password123", from: "10.9.9.9, 198.51.100.7").status == .tooManyRequests)
            // ...while another client, and the accounts themselves, are fine.
            #expect(try await Self.login(client, "spray-3@example.com", "password123", from: "198.51.100.8").status == .ok)
            #expect(try await Self.login(client, "spray-0@example.com", "password123", from: "198.51.100.9").status == .ok)
        }
    }

    /// One IPv6 host normally holds a whole /64: rotating addresses inside it must not reset the
    /// registration cap, the login lockout or the token bucket.
    @Test func ipv6ClientsAreCountedByTheirSlash64() async throws {
        try await withApp(.sqlite, framework: .live, configure: {
            $0.registerMaxPerWindow = 3
            $0.loginMaxFailures = 2
            $0.rateLimitRPS = 0.05
            $0.rateLimitBurst = 30
            $0.trustedProxies = [try #require(IPRange("127.0.0.1"))]
        }) { client in
            func register(_ email: String, from address: String) async throws -> HTTPResponse.Status {
                try await client.call(.post, "/api/v1/auth/register", json: ["email": email, "password": "password123"],
                                      headers: [.xForwardedFor: address]).status
            }
            for index in 1...3 { #expect(try await register("v6-\(index)@example.com", from: "2001:db8:7:7::\(index)") == .created) }
            #expect(try await register("v6-4@example.com", from: "2001:db8:7:7:ffff::4") == .tooManyRequests)
            #expect(try await register("v6-5@example.com", from: "2001:db8:7:8::1") == .created)

            for index in 1...2 {
                #expect(try await Self.login(client, "v6-\(index)@example.com", "wrong-password", from: "2001:db8:7:7::a\(index)").status == .unauthorized)
            }
            #expect(try await Self.login(client, "v6-3@example.com", "password123", from: "2001:db8:7:7::b").status == .tooManyRequests)
            #expect(try await Self.login(client, "v6-3@example.com", "password123", from: "2001:db8:7:8::b").status == .ok)

            // The bucket (30, hardly refilling) has paid for the 11 calls above from both networks;
            // what is left of it runs out however the addresses rotate.
            var statuses: [HTTPResponse.Status] = []
            for index in 1...30 {
                statuses.append(try await client.call(.get, "/api/v1/courses", headers: [.xForwardedFor: "2001:db8:7:7::c\(index)"]).status)
            }
            #expect(statuses.contains(.tooManyRequests))
            #expect(try await client.call(.get, "/api/v1/courses", headers: [.xForwardedFor: "2001:db8:7:9::1"]).status == .ok)
        }
    }

    @Test func registrationsAreCappedPerAddress() async throws {
        try await withApp(.sqlite, configure: { $0.registerMaxPerWindow = 3 }) { client in
            for index in 0..<3 { try await client.register("cap-\(index)@example.com") }
            let refused = try await client.call(.post, "/api/v1/auth/register", json: ["email": "cap-9@example.com", "password": "password123"])
            #expect(refused.status == .tooManyRequests)
            #expect(refused.headers[.retryAfter] != nil)
            #expect(refused.isProblem)
        }
    }

    @Test func everyClientHasATokenBucket() async throws {
        try await withApp(.sqlite, framework: .live, configure: {
            $0.rateLimitRPS = 0.05
            $0.rateLimitBurst = 5
            $0.trustedProxies = [try #require(IPRange("127.0.0.1"))]
        }) { client in
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<7 {
                statuses.append(try await client.call(.get, "/api/v1/courses", headers: [.xForwardedFor: "192.0.2.1"]).status)
            }
            #expect(statuses.prefix(5).allSatisfy { $0 == .ok })
            #expect(statuses.suffix(2).allSatisfy { $0 == .tooManyRequests })
            let limited = try await client.call(.get, "/api/v1/courses", headers: [.xForwardedFor: "192.0.2.1"])
            let retryAfter = try #require(limited.headers[.retryAfter].flatMap(Int.init))
            #expect((1...20).contains(retryAfter))
            #expect(limited.headers[.rateLimitLimit] == "5")
            #expect(limited.isProblem)
            // Other clients and the health checks are unaffected.
            #expect(try await client.call(.get, "/api/v1/courses", headers: [.xForwardedFor: "192.0.2.2"]).status == .ok)
            #expect(try await client.call(.get, "/health", headers: [.xForwardedFor: "192.0.2.1"]).status == .ok)
            #expect(try await client.call(.get, "/ready", headers: [.xForwardedFor: "192.0.2.1"]).status == .ok)
        }
    }

    @Test func clientAddressResolution() throws {
        let resolver = ClientAddressResolver(trustedProxies: [try #require(IPRange("10.0.0.0/8")), try #require(IPRange("::1"))])
        #expect(resolver.resolve(peer: "203.0.113.5", forwardedFor: ["1.2.3.4"]) == "203.0.113.5")
        #expect(resolver.resolve(peer: "10.1.2.3", forwardedFor: ["1.2.3.4"]) == "1.2.3.4")
        #expect(resolver.resolve(peer: "10.1.2.3", forwardedFor: ["6.6.6.6, 1.2.3.4, 10.0.0.9"]) == "1.2.3.4")
        #expect(resolver.resolve(peer: "10.1.2.3", forwardedFor: ["6.6.6.6", "1.2.3.4"]) == "1.2.3.4")
        #expect(resolver.resolve(peer: "::1", forwardedFor: ["2001:db8::1"]) == "2001:db8::1")
        #expect(resolver.resolve(peer: "10.1.2.3", forwardedFor: []) == "10.1.2.3")
        #expect(resolver.resolve(peer: nil, forwardedFor: ["1.2.3.4"]) == "unknown")
        #expect(IPRange("10.0.0.0/33") == nil)
        #expect(IPRange("not-an-ip") == nil)
        for malformed in ["/", "/8", "10.0.0.0/", "10.0.0.0//8"] { #expect(IPRange(malformed) == nil, "\(malformed)") }
        #expect(IPAddress.limitKey(of: "203.0.113.9") == "203.0.113.9")
        #expect(IPAddress.limitKey(of: "::ffff:203.0.113.9") == "203.0.113.9")
        #expect(IPAddress.limitKey(of: "2001:db8:0:a::1") == "2001:db8:0:a::/64")
        #expect(IPAddress.limitKey(of: "2001:DB8:0:A:ffff:1:2:3") == "2001:db8:0:a::/64")
        #expect(IPAddress.limitKey(of: "2001:db8:0:b::1") == "2001:db8:0:b::/64")
        #expect(IPAddress.limitKey(of: "::1") == "0:0:0:0::/64")
        #expect(IPAddress.limitKey(of: "unknown") == "unknown")
        #expect(try #require(IPRange("192.168.0.0/16")).contains(try #require(IPAddress.bytes(of: "::ffff:192.168.4.4"))))
    }

    @Test func thePostgreSQLStoreIsSharedByInstances() async throws {
        let location = try await TestDatabase.postgres.makeLocation()
        var configuration = testConfiguration(location)
        configuration.rateLimitStore = .postgres
        configuration.loginMaxFailures = 4
        let first = try await buildApplication(configuration, logger: testLogger)
        let second = try await buildApplication(configuration, logger: testLogger)
        try await first.test(.router) { a in
            try await second.test(.router) { b in
                try await a.register("shared@example.com")
                // Failures spread over both instances add up: an attacker gains nothing from more instances.
                for client in [a, b, a, b] {
                    #expect(try await Self.login(client, "shared@example.com", "wrong-password").status == .unauthorized)
                }
                #expect(try await Self.login(a, "shared@example.com", "password123").status == .tooManyRequests)
                #expect(try await Self.login(b, "shared@example.com", "password123").status == .tooManyRequests)
            }
        }
    }

    /// Rows of ended windows are deleted by a later write, at most once a window, so the table
    /// holds only what is still counting.
    @Test func theSQLStoreDeletesEndedWindows() async throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let backend = try await TestDatabase.postgres.makeLocation().open(poolSize: 2, logger: testLogger)
        try await backend.whileRunning(logger: testLogger) { backend in
            try await Migrator(database: backend, logger: testLogger).migrate()
            func keys() async throws -> [String] {
                try await backend.sql.raw("SELECT key FROM rate_limit_counters ORDER BY key").all().map { try $0.decode(column: "key", as: String.self) }
            }
            let store = SQLAttemptStore(database: backend)
            _ = try await store.record("old-1", window: 60, now: start)
            _ = try await store.record("old-2", window: 60, now: start.addingTimeInterval(10))
            _ = try await store.record("later", window: 60, now: start.addingTimeInterval(55))
            #expect(try await keys() == ["later", "old-1", "old-2"])
            // A window after the first write's purge: old-1's window has ended, old-2's not yet.
            _ = try await store.record("latest", window: 60, now: start.addingTimeInterval(65))
            #expect(try await keys() == ["later", "latest", "old-2"])
            // old-2's has ended too, but the last purge was less than a window ago.
            _ = try await store.record("last", window: 60, now: start.addingTimeInterval(100))
            #expect(try await keys() == ["last", "later", "latest", "old-2"])
        }
    }

    @Test func theInMemoryStoreDropsEndedWindows() async throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let store = InMemoryAttemptStore()
        _ = try await store.record("old-1", window: 60, now: start)
        _ = try await store.record("old-2", window: 60, now: start.addingTimeInterval(10))
        _ = try await store.record("later", window: 60, now: start.addingTimeInterval(55))
        #expect(store.keys == ["later", "old-1", "old-2"])
        // A window after the first write's sweep: old-1's window has ended, old-2's not yet.
        _ = try await store.record("latest", window: 60, now: start.addingTimeInterval(65))
        #expect(store.keys == ["later", "latest", "old-2"])
        // old-2's has ended too, but the last sweep was less than a window ago.
        _ = try await store.record("last", window: 60, now: start.addingTimeInterval(100))
        #expect(store.keys == ["last", "later", "latest", "old-2"])
        #expect(try await store.record("later", window: 60, now: start.addingTimeInterval(101)).count == 2)
    }

    @Test func attemptStoresCountInFixedWindows() async throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let backend = try await TestDatabase.postgres.makeLocation().open(poolSize: 2, logger: testLogger)
        try await backend.whileRunning(logger: testLogger) { backend in
            try await Migrator(database: backend, logger: testLogger).migrate()
            for store in [InMemoryAttemptStore(), SQLAttemptStore(database: backend)] as [any AttemptStore] {
                #expect(try await store.count("k", window: 60, now: start).count == 0)
                #expect(try await store.record("k", window: 60, now: start).count == 1)
                let second = try await store.record("k", window: 60, now: start.addingTimeInterval(10))
                #expect(second.count == 2)
                #expect(abs(second.windowEnds.timeIntervalSince(start.addingTimeInterval(60))) < 0.01)
                #expect(try await store.count("k", window: 60, now: start.addingTimeInterval(59)).count == 2)
                #expect(try await store.count("k", window: 60, now: start.addingTimeInterval(61)).count == 0)
                #expect(try await store.record("k", window: 60, now: start.addingTimeInterval(61)).count == 1)
                try await store.reset("k")
                #expect(try await store.count("k", window: 60, now: start.addingTimeInterval(62)).count == 0)
            }
        }
    }
}
