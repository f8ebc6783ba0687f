import Dispatch
import HummingbirdBcrypt
import NIOPosix
import Testing
@testable import OpenCourse

/// CBcryptPair is our own bcrypt (two hashes interleaved on one thread), so it is checked against
/// published vectors and, both ways, against hummingbird-auth's bcrypt.
@Suite("bcrypt, two at a time")
struct PasswordHashingTests {
    /// One pool for the suite's `PasswordHasher` tests (a hasher's pool lives as long as the app).
    static let hasher = PasswordHasher(cost: 5, threads: 1)

    /// From Openwall's crypt_blowfish test set; each also passes hummingbird-auth's `Bcrypt.verify`.
    static let vectors: [(password: String, hash: String)] = [
        ("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
        ("U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"),
        ("U*U*U", "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a"),
        ("", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy"),
        (
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored",
            "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"
        ),
        ("U*U", "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
    ]

    @Test func publishedVectorsAloneAndInPairs() {
        for (index, vector) in Self.vectors.enumerated() {
            let input = BcryptInput(password: vector.password, setting: vector.hash)
            #expect(PairedBcrypt.hash(input).0 == vector.hash)
            let partner = Self.vectors[(index + 1) % Self.vectors.count]
            let (first, second) = PairedBcrypt.hash(input, BcryptInput(password: partner.password, setting: partner.hash))
            #expect(first == vector.hash)
            #expect(second == partner.hash)
        }
    }

    @Test func agreesWithHummingbirdBcryptBothWays() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcXYZ019 !$ü€😀")
        func password() -> String {
            String((0..<Int.random(in: 0...90, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
        }
        for round in 0..<12 {
            let cost = 4 + round % 3
            let a = password()
            var b = password()
            // bcrypt reads 72 bytes, so b must differ from a within them for a wrong-password check.
            while b.utf8.prefix(72).elementsEqual(a.utf8.prefix(72)) { b = password() }
            // Ours, in a pair, verified by theirs.
            let settings = (PairedBcrypt.setting(cost: cost), PairedBcrypt.setting(cost: cost))
            let (hashA, hashB) = PairedBcrypt.hash(BcryptInput(password: a, setting: settings.0), BcryptInput(password: b, setting: settings.1))
            let ours = (try #require(hashA), try #require(hashB))
            #expect(ours.0.hasPrefix(settings.0) && ours.0.utf8.count == 60)
            #expect(Bcrypt.verify(a, hash: ours.0))
            #expect(Bcrypt.verify(b, hash: ours.1))
            #expect(!Bcrypt.verify("x" + a, hash: ours.0))  // bcrypt ignores bytes after the 72nd, so change the first
            // The pair gives what each gives alone.
            #expect(PairedBcrypt.hash(BcryptInput(password: b, setting: settings.1)).0 == ours.1)
            // Theirs, verified by ours, alone and paired with a different cost.
            let theirs = Bcrypt.hash(a, cost: UInt8(cost))
            #expect(PairedBcrypt.hash(BcryptInput(password: a, setting: theirs)).0 == theirs)
            let other = Bcrypt.hash(b, cost: UInt8(cost + 1))
            let (first, second) = PairedBcrypt.hash(BcryptInput(password: a, setting: theirs), BcryptInput(password: b, setting: other))
            #expect(first == theirs)
            #expect(second == other)
            #expect(!PairedBcrypt.matches(try #require(PairedBcrypt.hash(BcryptInput(password: b, setting: theirs)).0), theirs))
        }
    }

    /// Past 72 bytes the two minor versions differ: `$2b$` stops at 72, `$2a$` keeps OpenBSD's
    /// historical length byte, which wraps at 256. The reference hashes only `$2b$` but verifies both.
    @Test(arguments: ["$2a$", "$2b$"], [71, 72, 73, 254, 255, 256, 300])
    func longPasswordsFollowTheReference(version: String, length: Int) throws {
        let password = String((0..<length).map { Character(UnicodeScalar(UInt8(33 + $0 % 90))) })
        let setting = version + PairedBcrypt.setting(cost: 4).dropFirst(4)
        let hash = try #require(PairedBcrypt.hash(BcryptInput(password: password, setting: setting)).0)
        #expect(hash.hasPrefix(setting))
        #expect(Bcrypt.verify(password, hash: hash))
        #expect(!Bcrypt.verify("#" + password.dropFirst(), hash: hash))
    }

    @Test(arguments: ["", "not-a-hash", "$2c$05$CCCCCCCCCCCCCCCCCCCCC.", "$2b$03$CCCCCCCCCCCCCCCCCCCCC.", "$2b$32$CCCCCCCCCCCCCCCCCCCCC.",
                      "$2b$05$CCCCCCCCCCCCCCCCCCCC", "$2b$05$CCCCCCCCCCCC*CCCCCCCC.", "$2b$5$CCCCCCCCCCCCCCCCCCCCC."])
    func malformedSettingFailsWithoutItsPartner(setting: String) async throws {
        let good = Self.vectors[0]
        let (first, second) = PairedBcrypt.hash(BcryptInput(password: "password", setting: setting), BcryptInput(password: good.password, setting: good.hash))
        #expect(first == nil)
        #expect(second == good.hash)
        #expect(try await Self.hasher.verify("password", against: setting) == false)
    }

    @Test func hasherHashesAndVerifies() async throws {
        let hasher = Self.hasher
        let hash = try await hasher.hash("correct horse")
        #expect(hash.hasPrefix("$2b$05$"))
        #expect(Bcrypt.verify("correct horse", hash: hash))
        #expect(try await hasher.verify("correct horse", against: hash))
        #expect(try await hasher.verify("correct horsE", against: hash) == false)
        #expect(try await hasher.verify("U*U*", against: Self.vectors[1].hash))
    }

    /// With the one thread busy, five requests wait; when it frees, the oldest runs with the next
    /// of its cost, the cost-5 request alone, and the last two together.
    @Test func waitingRequestsOfOneCostRunInPairs() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let metrics = AppMetrics()
        let queue = BcryptQueue(pool: pool, metrics: metrics)
        let gate = DispatchSemaphore(value: 0)
        pool.submit { _ in gate.wait() }
        let inputs = [4, 5, 4, 4, 4].enumerated().map { index, cost in
            BcryptInput(password: "password \(index)", setting: PairedBcrypt.setting(cost: cost))
        }
        var tasks: [Task<String?, any Error>] = []
        for input in inputs {
            let waiting = queue.waitingCount
            tasks.append(Task { try await queue.hash(input) })
            while queue.waitingCount == waiting { try await Task.sleep(for: .milliseconds(1)) }
        }
        gate.signal()
        for (task, input) in zip(tasks, inputs) {
            let hash = try #require(try await task.value)
            #expect(Bcrypt.verify(input.password, hash: hash))
        }
        let exposition = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(exposition.contains("opencourse_bcrypt_paired_operations_total 4\n"))
        try await pool.shutdownGracefully()
    }

    /// Requests still waiting when the pool stops are answered with an error, not left hanging:
    /// they must fail while the pool's one thread is still busy, before the gate opens.
    @Test func requestsWaitingAtShutdownFail() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let queue = BcryptQueue(pool: pool, metrics: nil)
        let gate = DispatchSemaphore(value: 0)
        pool.submit { _ in gate.wait() }
        let tasks = (0..<3).map { index in
            Task { try await queue.hash(BcryptInput(password: "p\(index)", setting: PairedBcrypt.setting(cost: 4))) }
        }
        while queue.waitingCount < 3 { try await Task.sleep(for: .milliseconds(1)) }
        let shutdown = Task { try await pool.shutdownGracefully() }
        for task in tasks {
            await #expect(throws: NIOThreadPoolError.ThreadPoolInactive.self) { try await task.value }
        }
        gate.signal()
        try await shutdown.value
        await #expect(throws: NIOThreadPoolError.ThreadPoolInactive.self) {
            try await queue.hash(BcryptInput(password: "late", setting: PairedBcrypt.setting(cost: 4)))
        }
    }
}
