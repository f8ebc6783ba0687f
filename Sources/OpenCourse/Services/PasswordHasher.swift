import NIOCore
import NIOPosix
import ServiceLifecycle

/// bcrypt on its own thread pool, one thread per core, so that a burst of logins queues there
/// instead of stalling the event loops (or SQLite's pool) that serve every other request. Waiting
/// hashes of the same cost run two at a time on one thread (`BcryptQueue`), which nearly doubles
/// the logins a core signs in during a storm.
public struct PasswordHasher: Sendable {
    public let cost: Int
    private let pool: NIOThreadPool
    private let queue: BcryptQueue
    /// A hash of a random password at the configured cost: verifying against it when an email is
    /// unknown makes a failed login take as long as a wrong password.
    private let decoyHash: String
    private let metrics: AppMetrics?

    public init(cost: Int, threads: Int = System.coreCount, metrics: AppMetrics? = nil) {
        self.cost = cost
        self.metrics = metrics
        self.pool = NIOThreadPool(numberOfThreads: max(1, threads))
        self.pool.start()
        self.queue = BcryptQueue(pool: pool, metrics: metrics)
        guard let decoy = PairedBcrypt.hash(BcryptInput(password: UUIDString.random(), setting: PairedBcrypt.setting(cost: cost))).0 else {
            preconditionFailure("a setting made by PairedBcrypt.setting did not parse")
        }
        self.decoyHash = decoy
    }

    public func hash(_ password: String) async throws -> String {
        metrics?.recordBcrypt(hash: true)
        let input = BcryptInput(password: password, setting: PairedBcrypt.setting(cost: cost))
        guard let hash = try await queue.hash(input) else {
            preconditionFailure("a setting made by PairedBcrypt.setting did not parse")
        }
        return hash
    }

    /// False for a wrong password and for a stored hash that is not bcrypt's.
    public func verify(_ password: String, against hash: String) async throws -> Bool {
        metrics?.recordBcrypt(hash: false)
        guard let computed = try await queue.hash(BcryptInput(password: password, setting: hash)) else { return false }
        return PairedBcrypt.matches(computed, hash)
    }

    /// Spends the time of one verification without a real account.
    public func verifyDecoy(_ password: String) async throws {
        _ = try await verify(password, against: decoyHash)
    }

    /// Stops the pool at shutdown, after requests have drained.
    var service: some Service { ThreadPoolCloser(pool: pool) }
}

private struct ThreadPoolCloser: Service {
    let pool: NIOThreadPool

    func run() async throws {
        try? await gracefulShutdown()
        try await pool.shutdownGracefully()
    }
}

private enum UUIDString {
    static func random() -> String { (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 36) }.joined() }
}
