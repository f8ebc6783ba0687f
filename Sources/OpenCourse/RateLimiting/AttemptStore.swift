import Foundation
import Synchronization

/// How many attempts a key has made in its current window, and when that window ends.
public struct AttemptCount: Sendable, Equatable {
    public var count: Int
    public var windowEnds: Date
}

/// Fixed-window counters for login failures and registrations. Two implementations: in memory
/// (one instance) and SQL (`SQLAttemptStore`, shared by every instance on one PostgreSQL).
public protocol AttemptStore: Sendable {
    /// The current count (0 when the key has no open window).
    func count(_ key: String, window: TimeInterval, now: Date) async throws -> AttemptCount
    /// Adds one attempt and returns the new count, opening a new window when the last one ended.
    func record(_ key: String, window: TimeInterval, now: Date) async throws -> AttemptCount
    /// Forgets the key (a successful login resets its account's failures).
    func reset(_ key: String) async throws
}

public final class InMemoryAttemptStore: AttemptStore {
    private struct Entry {
        var count: Int
        var windowStart: Date
    }

    private let entries = Mutex<[String: Entry]>([:])
    /// Entries of ended windows are dropped at most once a window, as in `SQLAttemptStore`: a
    /// pass over every entry must not fall on every write, however many windows clients keep open.
    private let purge = PurgeSchedule()

    public init() {}

    public func count(_ key: String, window: TimeInterval, now: Date) async throws -> AttemptCount {
        entries.withLock { entries in
            guard let entry = entries[key], entry.windowStart > now.addingTimeInterval(-window) else {
                return AttemptCount(count: 0, windowEnds: now.addingTimeInterval(window))
            }
            return AttemptCount(count: entry.count, windowEnds: entry.windowStart.addingTimeInterval(window))
        }
    }

    public func record(_ key: String, window: TimeInterval, now: Date) async throws -> AttemptCount {
        let sweep = purge.claim(now: now, every: window)
        return entries.withLock { entries in
            let cutoff = now.addingTimeInterval(-window)
            if sweep { entries = entries.filter { $0.value.windowStart > cutoff } }
            var entry = entries[key] ?? Entry(count: 0, windowStart: now)
            if entry.windowStart <= cutoff { entry = Entry(count: 0, windowStart: now) }
            entry.count += 1
            entries[key] = entry
            return AttemptCount(count: entry.count, windowEnds: entry.windowStart.addingTimeInterval(window))
        }
    }

    public func reset(_ key: String) async throws {
        _ = entries.withLock { $0.removeValue(forKey: key) }
    }

    /// The keys held, open windows or not.
    var keys: Set<String> { entries.withLock { Set($0.keys) } }
}

/// Deleting ended windows on a schedule, not on every write.
final class PurgeSchedule: Sendable {
    private let last = Mutex<Date?>(nil)

    /// True for one caller at a time once `interval` has passed since the last claim (and for the first).
    func claim(now: Date, every interval: TimeInterval) -> Bool {
        last.withLock { last in
            if let last, now.timeIntervalSince(last) < interval { return false }
            last = now
            return true
        }
    }
}
