import Foundation
import Logging
import NIOPosix
import PostgresNIO
import ServiceLifecycle

/// Keeps this instance's catalog cache coherent with the other instances on the same PostgreSQL:
/// their `CatalogChangeBroadcaster`s send `NOTIFY opencourse_catalog, '<id>,<id>,…'` after courses
/// change; this service listens on its own connection (not one of the pool's) and drops the
/// affected entries. While it is not listening it cannot know what
/// changed, so it clears the cache each time it (re)connects and retries every second. While
/// PostgreSQL is down that would be a warning a second: it warns on the first failure and then at
/// most every `warningInterval`, with the count, and says when it listens again.
struct CatalogChangeListener: Service {
    static let channel = "opencourse_catalog"
    static let warningInterval = Duration.seconds(60)

    let configuration: PostgresConnection.Configuration
    let cache: CatalogCache
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var connectionID = 0
            var failures = 0
            var lastWarning: ContinuousClock.Instant?
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
                            if failures > 0 {
                                logger.notice("catalog change listener is listening again", metadata: ["failures": "\(failures)"])
                                (failures, lastWarning) = (0, nil)
                            }
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
                    failures += 1
                    let now = ContinuousClock.now
                    if lastWarning.map({ now - $0 >= Self.warningInterval }) ?? true {
                        logger.warning("catalog change listener lost its connection; retrying every second", metadata: [
                            "error": "\(RedactedErrorDescription(error))", "failures": "\(failures)",
                        ])
                        lastWarning = now
                    }
                }
                cache.invalidateAll()
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}
