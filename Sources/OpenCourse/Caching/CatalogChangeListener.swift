import Foundation
import Logging
import NIOPosix
import PostgresNIO
import ServiceLifecycle

/// Keeps this instance's catalog cache coherent with the other instances on the same PostgreSQL:
/// their `CatalogChangeBroadcaster`s send `NOTIFY opencourse_catalog, '<id>,<id>,…'` after courses
/// change; this service listens on its own connection (not one of the pool's) and drops the
/// affected entries. While it is not listening it cannot know what
/// changed, so it clears the cache each time it (re)connects and retries every second.
struct CatalogChangeListener: Service {
    static let channel = "opencourse_catalog"

    let configuration: PostgresConnection.Configuration
    let cache: CatalogCache
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var connectionID = 0
            while !Task.isCancelled {
                connectionID += 1
                do {
                    let connection = try await PostgresConnection.connect(
                        on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration,
                        id: connectionID, logger: logger
                    )
                    do {
                        try await connection.listen(on: Self.channel) { notifications in
                            cache.invalidateAll()
                            for try await notification in notifications {
                                for text in notification.payload.split(separator: ",") {
                                    if let id = UUID(apiString: text) {
                                        cache.courseChanged(id)
                                    } else {
                                        cache.invalidateAll()
                                    }
                                }
                            }
                        }
                    } catch {
                        try? await connection.close()
                        throw error
                    }
                    try? await connection.close()
                } catch {
                    if Task.isCancelled { break }
                    logger.warning("catalog change listener lost its connection; retrying", metadata: ["error": "\(RedactedErrorDescription(error))"])
                }
                cache.invalidateAll()
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}
