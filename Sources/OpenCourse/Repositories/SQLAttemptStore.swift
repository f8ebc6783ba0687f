import Foundation
import SQLKit

/// Attempt counters in the `rate_limit_counters` table, so that every instance behind one load
/// balancer sees the same counts. Each operation is one statement, but for the purge.
public struct SQLAttemptStore: AttemptStore {
    let database: any DatabaseBackend
    /// Rows of windows that ended stay behind (one for every address and email that ever failed
    /// a sign-in or registered) until something deletes them: each instance does, at most once a
    /// window, after a write.
    private let purge = PurgeSchedule()

    public init(database: any DatabaseBackend) {
        self.database = database
    }

    public func count(_ key: String, window: TimeInterval, now: Date) async throws -> AttemptCount {
        let row = try await database.sql.raw("""
            SELECT count, window_start FROM rate_limit_counters
            WHERE key = \(bind: key) AND window_start > \(bind: now.addingTimeInterval(-window))
            """).first()
        guard let row else { return AttemptCount(count: 0, windowEnds: now.addingTimeInterval(window)) }
        return try Self.attemptCount(row, window: window)
    }

    public func record(_ key: String, window: TimeInterval, now: Date) async throws -> AttemptCount {
        let expired = now.addingTimeInterval(-window)
        let row = try await database.sql.raw("""
            INSERT INTO rate_limit_counters (key, window_start, count) VALUES (\(bind: key), \(bind: now), 1)
            ON CONFLICT (key) DO UPDATE SET
                count = CASE WHEN rate_limit_counters.window_start <= \(bind: expired) THEN 1 ELSE rate_limit_counters.count + 1 END,
                window_start = CASE WHEN rate_limit_counters.window_start <= \(bind: expired) THEN excluded.window_start ELSE rate_limit_counters.window_start END
            RETURNING count, window_start
            """).first()
        if purge.claim(now: now, every: window) {
            // Best effort: the count above stands whether or not this succeeds.
            try? await database.sql.raw("DELETE FROM rate_limit_counters WHERE window_start <= \(bind: expired)").run()
        }
        guard let row else { return AttemptCount(count: 1, windowEnds: now.addingTimeInterval(window)) }
        return try Self.attemptCount(row, window: window)
    }

    public func reset(_ key: String) async throws {
        try await database.sql.raw("DELETE FROM rate_limit_counters WHERE key = \(bind: key)").run()
    }

    private static func attemptCount(_ row: any SQLRow, window: TimeInterval) throws -> AttemptCount {
        AttemptCount(
            count: try row.decode(column: "count", as: Int.self),
            windowEnds: try row.decode(column: "window_start", as: Date.self).addingTimeInterval(window)
        )
    }
}
