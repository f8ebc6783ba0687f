import HummingbirdBcrypt
import NIOCore
import NIOPosix
import ServiceLifecycle

/// bcrypt on its own thread pool, one thread per core, so that a burst of logins queues there
/// instead of stalling the event loops (or SQLite's pool) that serve every other request.
public struct PasswordHasher: Sendable {
    public let cost: Int
    private let pool: NIOThreadPool
    /// A hash of a random password at the configured cost: verifying against it when an email is
    /// unknown makes a failed login take as long as a wrong password.
    private let decoyHash: String
    private let metrics: AppMetrics?

    public init(cost: Int, threads: Int = System.coreCount, metrics: AppMetrics? = nil) {
        self.cost = cost
        self.metrics = metrics
        self.pool = NIOThreadPool(numberOfThreads: max(1, threads))
        self.pool.start()
        self.decoyHash = Bcrypt.hash(UUIDString.random(), cost: UInt8(cost))
    }

    public func hash(_ password: String) async throws -> String {
        let cost = UInt8(self.cost)
        metrics?.recordBcrypt(hash: true)
        return try await pool.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    public func verify(_ password: String, against hash: String) async throws -> Bool {
        metrics?.recordBcrypt(hash: false)
        return try await pool.runIfActive { Bcrypt.verify(password, hash: hash) }
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
