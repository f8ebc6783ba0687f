import Logging
import ServiceLifecycle
import Synchronization

/// Whether this instance wants new traffic; `/ready` reports it.
public final class Readiness: Sendable {
    private let draining = Atomic<Bool>(false)
    private let serving = Atomic<Bool>(false)

    public init() {}

    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Whether the server has started listening (it never has while start-up migrations wait).
    var isServing: Bool { serving.load(ordering: .relaxed) }

    func startDraining() { draining.store(true, ordering: .relaxed) }

    func markServing() { serving.store(true, ordering: .relaxed) }
}

/// First to be told of a shutdown (it runs after the application in the service group, and a
/// group stops its services in reverse order): it makes `/ready` answer 503 at once, then keeps
/// the server serving normally for the drain period, so the load balancer's health check takes the
/// instance out of rotation before it stops listening. Closing the listener earlier would reset
/// connections the balancer had already queued on it.
public struct ShutdownDrain: Service {
    let readiness: Readiness
    let seconds: Double
    let logger: Logger

    public init(readiness: Readiness, seconds: Double, logger: Logger) {
        self.readiness = readiness
        self.seconds = seconds
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            // Cancelled: another service failed, which is no shutdown request and nothing to drain.
            return
        }
        readiness.startDraining()
        guard readiness.isServing else {
            logger.notice("shutting down before the server started listening: nothing to drain")
            return
        }
        logger.notice("shutting down: not ready, draining", metadata: ["drain_seconds": .stringConvertible(seconds)])
        if seconds > 0 { try? await Task.sleep(for: .seconds(seconds)) }
        logger.notice("drain over: closing the listener and finishing in-flight requests")
    }
}
