import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Tells the other instances on the same PostgreSQL which courses changed: the local cache is
/// invalidated at once, and the ids are sent with `pg_notify` in batches, outside the writing
/// transaction. (A trigger would catch every writer, but PostgreSQL serialises the commits of
/// transactions that NOTIFY, WAL flush included, which cut course creation to a third.) While one
/// notification is on its way, further ids gather for the next, so a burst of writes costs a few
/// statements, not one each. A change whose notification is lost (the process dies right after the
/// commit) reaches other instances when their entries expire (CATALOG_CACHE_TTL_SECONDS).
final class CatalogChangeBroadcaster: CatalogChangeObserver, Service, Sendable {
    /// PostgreSQL's payload limit is 8000 bytes; 37 bytes per id with its comma.
    static let idsPerNotification = 200

    let cache: CatalogCache
    let database: any DatabaseBackend
    let logger: Logger
    private let pending = Mutex<[UUID]>([])
    private let signal: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(cache: CatalogCache, database: any DatabaseBackend, logger: Logger) {
        self.cache = cache
        self.database = database
        self.logger = logger
        (signal, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func courseChanged(_ id: UUID) {
        cache.courseChanged(id)
        pending.withLock { $0.append(id) }
        wake.yield()
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await _ in self.signal {
                await self.sendPending()
            }
        }
        await sendPending()
    }

    enum Notify: PreparedStatement {
        static let sql = "SELECT pg_notify($1, $2)"
    }

    private func sendPending() async {
        let ids = pending.withLock { ids in
            defer { ids.removeAll() }
            return ids
        }
        var start = ids.startIndex
        while start < ids.endIndex {
            let end = min(start + Self.idsPerNotification, ids.endIndex)
            let payload = ids[start..<end].map(\.apiString).joined(separator: ",")
            do {
                _ = try await database.run(Notify.self, [.text(CatalogChangeListener.channel), .text(payload)])
            } catch {
                logger.warning("could not notify other instances of catalog changes", metadata: ["error": "\(RedactedErrorDescription(error))"])
            }
            start = end
        }
    }
}
