import Foundation
import Synchronization

/// Per-client token buckets in this instance's memory: every request takes a token, tokens come
/// back at `rate` per second up to `burst`. Ordinary requests never touch the database for this.
public final class TokenBucketLimiter: Sendable {
    public struct Decision: Sendable, Equatable {
        public var allowed: Bool
        /// Seconds until a token is available again (0 when allowed).
        public var retryAfter: Int
    }

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private struct State {
        var buckets: [String: Bucket] = [:]
        var lastSweep: ContinuousClock.Instant
    }

    let rate: Double
    let burst: Int
    private let state: Mutex<State>
    private let clock = ContinuousClock()

    public init(rate: Double, burst: Int) {
        self.rate = rate
        self.burst = burst
        self.state = Mutex(State(lastSweep: clock.now))
    }

    public func take(for client: String) -> Decision {
        let now = clock.now
        let rate = self.rate
        let burst = Double(self.burst)
        return state.withLock { state in
            var bucket = state.buckets[client] ?? Bucket(tokens: burst, updated: now)
            let elapsed = Self.seconds(now - bucket.updated)
            bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
            bucket.updated = now
            let decision: Decision
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                decision = Decision(allowed: true, retryAfter: 0)
            } else {
                decision = Decision(allowed: false, retryAfter: max(1, Int(((1 - bucket.tokens) / rate).rounded(.up))))
            }
            state.buckets[client] = bucket
            // Buckets that have refilled completely carry no information: drop them now and then so
            // memory stays bounded by the clients active in the last refill period.
            let refill = burst / rate
            if Self.seconds(now - state.lastSweep) > max(refill, 10) {
                state.buckets = state.buckets.filter { Self.seconds(now - $0.value.updated) < refill }
                state.lastSweep = now
            }
            return decision
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
