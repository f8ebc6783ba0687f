import Crypto
import Foundation
import NIOCore
import ServiceLifecycle
import Synchronization

/// A response body ready to send, with its strong validator.
public struct CachedRepresentation: Sendable {
    public let body: ByteBuffer
    public let etag: String
    /// `Link` header value of a list page, when there is a next page.
    public let link: String?

    init(body: ByteBuffer, link: String? = nil) {
        self.body = body
        self.link = link
        self.etag = Self.etag(of: body)
    }

    /// A strong ETag: the first 128 bits of the body's SHA-256.
    static func etag(of body: ByteBuffer) -> String {
        let digest = body.withUnsafeReadableBytes { SHA256.hash(data: $0) }
        return "\"" + digest.prefix(16).map { String(format: "%02x", $0) }.joined() + "\""
    }
}

/// Something that must hear when a course is created, changed or deleted.
public protocol CatalogChangeObserver: Sendable {
    func courseChanged(_ id: UUID)
}

/// Encoded catalog responses (course pages and single courses) kept in this instance: bounded in
/// entries and in bytes, each valid for a time to live, and filled without a stampede (concurrent
/// misses of one key share one load). A course change drops that course and every page, since any
/// page may list it; loads that were running during a change are not stored.
public final class CatalogCache: CatalogChangeObserver, Sendable {
    public enum Key: Hashable, Sendable {
        case course(UUID)
        /// The list query, canonicalised.
        case page(String)
    }

    fileprivate struct Entry {
        var value: CachedRepresentation
        var expires: ContinuousClock.Instant
        var lastUsed: UInt64
        var bytes: Int
    }

    fileprivate struct State {
        /// Single courses and pages apart: a change drops one course by key and all pages at once,
        /// so invalidation costs nothing in the number of cached courses.
        var courses: [UUID: Entry] = [:]
        var pages: [String: Entry] = [:]
        var loading: [Key: (id: UInt64, task: Task<CachedRepresentation, any Error>)] = [:]
        var generation: UInt64 = 0
        var tick: UInt64 = 0
        /// Kept apart so that dropping every page (each course change does) needs no recount
        /// of the courses; kept by the subscript and the bulk removals.
        var courseBytes = 0
        var pageBytes = 0
        var bytes: Int { courseBytes + pageBytes }
    }

    let capacity: Int
    /// A count alone does not bound memory: a page holds up to 100 courses of up to 10,000
    /// characters, and every distinct search or cursor is a page of its own.
    let maxBytes: Int
    let timeToLive: Duration

    private let state = Mutex(State())
    private let clock = ContinuousClock()

    public init(capacity: Int, maxBytes: Int = 64 << 20, timeToLive: Duration) {
        self.capacity = max(1, capacity)
        self.maxBytes = max(1, maxBytes)
        self.timeToLive = timeToLive
    }

    /// The cached value, or the result of `load` (shared with concurrent callers of the same key).
    /// Errors (an unknown course, say) are passed on and not cached.
    public func value(
        for key: Key, load: @escaping @Sendable () async throws -> CachedRepresentation
    ) async throws -> CachedRepresentation {
        let now = clock.now
        enum Lookup {
            case hit(CachedRepresentation)
            case wait(Task<CachedRepresentation, any Error>)
        }
        let lookup: Lookup = state.withLock { state in
            if let value = state.hit(key, at: now) { return .hit(value) }
            if let running = state.loading[key] { return .wait(running.task) }
            let generation = state.generation
            let loadID = state.tick
            let task = Task<CachedRepresentation, any Error> {
                defer { self.finishLoading(key, loadID) }
                let value = try await load()
                self.store(value, for: key, loadedIn: generation)
                return value
            }
            state.loading[key] = (loadID, task)
            return .wait(task)
        }
        switch lookup {
        case .hit(let value): return value
        case .wait(let task): return try await task.value
        }
    }

    /// The value if it is cached and fresh; never loads.
    public func cached(_ key: Key) -> CachedRepresentation? {
        let now = clock.now
        return state.withLock { $0.hit(key, at: now) }
    }

    public func courseChanged(_ id: UUID) {
        state.withLock { state in
            state.generation &+= 1
            state[.course(id)] = nil
            if !state.pages.isEmpty {
                state.pages.removeAll()
                state.pageBytes = 0
            }
            // Requests after the change must not join a load that started before it.
            state.loading.removeAll()
        }
    }

    /// Drops everything (when changes may have been missed, e.g. while reconnecting to listen).
    public func invalidateAll() {
        state.withLock { state in
            state.generation &+= 1
            state.courses.removeAll()
            state.pages.removeAll()
            (state.courseBytes, state.pageBytes) = (0, 0)
            state.loading.removeAll()
        }
    }

    var count: Int { state.withLock { $0.courses.count + $0.pages.count } }
    var bytes: Int { state.withLock { $0.bytes } }

    private func store(_ value: CachedRepresentation, for key: Key, loadedIn generation: UInt64) {
        let expires = clock.now + timeToLive
        let bytes = Self.bytes(of: value, key: key)
        // Served but not kept: one outsized page must not push out everything else.
        guard bytes <= maxBytes / 8 else { return }
        state.withLock { state in
            guard state.generation == generation else { return }
            state.tick &+= 1
            state[key] = Entry(value: value, expires: expires, lastUsed: state.tick, bytes: bytes)
            if state.courses.count + state.pages.count > capacity || state.bytes > maxBytes {
                Self.evict(&state, capacity: capacity, maxBytes: maxBytes, now: clock.now)
            }
        }
    }

    /// The body, link and key, plus an allowance for the entry's own storage (ETag, dictionary slot).
    private static func bytes(of value: CachedRepresentation, key: Key) -> Int {
        let keyBytes = switch key {
        case .course: 16
        case .page(let query): query.utf8.count
        }
        return value.body.readableBytes + (value.link?.utf8.count ?? 0) + keyBytes + 128
    }

    /// Forgets a finished load, unless an invalidation already replaced it with a newer one.
    private func finishLoading(_ key: Key, _ loadID: UInt64) {
        state.withLock { state in
            if state.loading[key]?.id == loadID { state.loading.removeValue(forKey: key) }
        }
    }

    /// Drops expired entries, then the least recently used down to nine tenths of both bounds,
    /// so eviction runs rarely.
    private static func evict(_ state: inout State, capacity: Int, maxBytes: Int, now: ContinuousClock.Instant) {
        dropExpired(&state, now: now)
        let (entryLimit, byteLimit) = (capacity * 9 / 10, maxBytes / 10 * 9)
        guard state.courses.count + state.pages.count > entryLimit || state.bytes > byteLimit else { return }
        let used = state.courses.map { (Key.course($0.key), $0.value.lastUsed) } + state.pages.map { (Key.page($0.key), $0.value.lastUsed) }
        for (key, _) in used.sorted(by: { $0.1 < $1.1 }) {
            guard state.courses.count + state.pages.count > entryLimit || state.bytes > byteLimit else { break }
            state[key] = nil
        }
    }
}

extension CatalogCache: Service {
    /// How often expired entries are dropped: a quarter of the time to live, at least 0.5 s apart.
    var sweepInterval: Duration { max(.milliseconds(500), timeToLive / 4) }

    /// Drops expired entries as time passes, not only when the cache is full, so that its memory
    /// follows what is still served: 5,000 courses fetched once hold ~4.5 MiB until swept.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: self.sweepInterval)
                self.removeExpired()
            }
        }
    }

    func removeExpired() {
        let now = clock.now
        state.withLock { Self.dropExpired(&$0, now: now) }
    }

    /// Rebuilds a dictionary only when something in it expired: a smaller copy also gives back
    /// the old storage.
    fileprivate static func dropExpired(_ state: inout State, now: ContinuousClock.Instant) {
        if state.courses.values.contains(where: { $0.expires <= now }) {
            state.courses = state.courses.filter { $0.value.expires > now }
            state.courseBytes = state.courses.values.reduce(0) { $0 + $1.bytes }
        }
        if state.pages.values.contains(where: { $0.expires <= now }) {
            state.pages = state.pages.filter { $0.value.expires > now }
            state.pageBytes = state.pages.values.reduce(0) { $0 + $1.bytes }
        }
    }
}

extension CatalogCache.State {
    subscript(key: CatalogCache.Key) -> CatalogCache.Entry? {
        get {
            switch key {
            case .course(let id): courses[id]
            case .page(let query): pages[query]
            }
        }
        set {
            let change = (newValue?.bytes ?? 0) - (self[key]?.bytes ?? 0)
            switch key {
            case .course(let id):
                courses[id] = newValue
                courseBytes += change
            case .page(let query):
                pages[query] = newValue
                pageBytes += change
            }
        }
    }

    /// A fresh entry's value, marked as used; counts a lookup either way.
    mutating func hit(_ key: CatalogCache.Key, at now: ContinuousClock.Instant) -> CachedRepresentation? {
        tick &+= 1
        switch key {
        case .course(let id): return Self.hit(id, in: &courses, at: now, tick: tick)
        case .page(let query): return Self.hit(query, in: &pages, at: now, tick: tick)
        }
    }

    /// One hash of the key for both the lookup and the mark (in place: a hit's size is unchanged,
    /// so the subscript's accounting is not needed). Every cached read takes this under the lock.
    private static func hit<K: Hashable>(
        _ key: K, in entries: inout [K: CatalogCache.Entry], at now: ContinuousClock.Instant, tick: UInt64
    ) -> CachedRepresentation? {
        guard let index = entries.index(forKey: key), entries.values[index].expires > now else { return nil }
        entries.values[index].lastUsed = tick
        return entries.values[index].value
    }
}
